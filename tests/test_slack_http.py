"""HTTP mode (no app token): Slack's events and commands arrive on one path of the bot's
HTTP server and are processed only when their signature checks out."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import aiohttp
import pytest
from pydantic import SecretStr

from adapters.slack.adapter import SlackAdapter
from tests.slack_support import *  # noqa: F401,F403
from tests.slack_support import load

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def signed(body: str, *, secret: str = SECRET, at: float | None = None, content_type="application/json") -> dict:
    ts = str(int(at if at is not None else time.time()))
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig, "Content-Type": content_type}


@pytest.fixture
async def http_bot(app, fake_slack, slack_settings):
    """`App.serve` with the Slack adapter in HTTP mode; AIBOT_HTTP_PORT unset."""
    settings = slack_settings.model_copy(update=dict(app_token=None, signing_secret=SecretStr(SECRET), http_port=0))
    app.settings = app.settings.model_copy(update=dict(http_port=None)).with_sections(settings)
    adapter = SlackAdapter(settings=settings)
    serving = asyncio.create_task(app.serve([adapter]))
    while adapter.me is None or app.http is None or app.http.bound_port is None:
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{app.http.bound_port}{settings.http_path}"
    async with aiohttp.ClientSession() as session:
        yield session, url, adapter
    await adapter.stop()
    await serving


async def test_correctly_signed_event_is_answered(http_bot, fake_slack, fake_llm, app):
    session, url, adapter = http_bot
    fake_llm.enqueue("Signed and answered.")
    body = json.dumps(load("app_mention"))
    fake_slack.deliver(json.loads(body))
    async with session.post(url, data=body, headers=signed(body)) as resp:
        assert resp.status == 200
    await fake_slack.wait_for(lambda: fake_slack.calls_to("chat.stopStream"))
    await adapter.idle()
    assert fake_slack.bot_messages()[-1].text == "Signed and answered."


async def test_retried_delivery_with_x_slack_retry_num_is_answered_once(http_bot, fake_slack, fake_llm, app):
    session, url, adapter = http_bot
    body = json.dumps(load("app_mention"))
    fake_slack.deliver(json.loads(body))
    for retry in (None, "1", "2"):
        headers = signed(body)
        if retry:
            headers |= {"X-Slack-Retry-Num": retry, "X-Slack-Retry-Reason": "http_timeout"}
        async with session.post(url, data=body, headers=headers) as resp:
            assert resp.status == 200
    await asyncio.sleep(0.2)
    await adapter.idle()
    await app.router.drain()
    assert len(fake_llm.chat_requests) == 1
    assert len(fake_slack.calls_to("chat.startStream")) == 1


async def test_wrong_signature_or_stale_timestamp_is_rejected_and_reaches_nothing(http_bot, fake_slack, fake_llm, app):
    session, url, adapter = http_bot
    body = json.dumps(load("app_mention"))
    attempts = [
        signed(body, secret="not-the-secret"),
        signed(body, at=time.time() - 10 * 60),  # replayed: older than 5 minutes
        {"Content-Type": "application/json"},  # unsigned
        signed(body) | {"X-Slack-Request-Timestamp": "yesterday"},  # not a number
        signed(body) | {"X-Slack-Request-Timestamp": "1e9"},
    ]
    for headers in attempts:
        async with session.post(url, data=body, headers=headers) as resp:
            assert resp.status == 401
    form = urlencode({**load("slash_command"), "command": "/summarize", "text": "hello"})
    async with session.post(url, data=form, headers=signed(form, secret="nope", content_type="application/x-www-form-urlencoded")) as resp:
        assert resp.status == 401
    await asyncio.sleep(0.2)
    await adapter.idle()
    await app.router.drain()
    assert fake_llm.chat_requests == []
    assert [c.method for c in fake_slack.calls if c.method.startswith(("chat.", "conversations."))] == []


async def test_signed_slash_command_is_acked_in_the_response_and_answered(http_bot, fake_slack, app):
    session, url, adapter = http_bot
    form = urlencode({**load("slash_command"), "command": "/help", "text": "", "response_url": fake_slack.response_url()})
    async with session.post(url, data=form, headers=signed(form, content_type="application/x-www-form-urlencoded")) as resp:
        assert resp.status == 200
    await fake_slack.wait_for(lambda: fake_slack.responses)
    assert "Commands" in fake_slack.responses[-1]["text"]


async def test_url_verification_challenge_is_answered(http_bot):
    session, url, adapter = http_bot
    body = json.dumps({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"})
    async with session.post(url, data=body, headers=signed(body)) as resp:
        assert resp.status == 200
        assert (await resp.json())["challenge"].startswith("3eZbrw1")


async def test_signed_summarize_thread_shortcut_is_answered_in_the_thread(http_bot, fake_slack, fake_llm, app):
    session, url, adapter = http_bot
    root = fake_slack.add_message("C123ABC456", "which region first?", user="U0ALICE")
    fake_slack.add_message("C123ABC456", "eu-west, then us-east", user="U0BOB", thread_ts=root.ts)
    fake_llm.enqueue("Rollout: eu-west first, then us-east.")
    payload = {"type": "message_action", "callback_id": "summarize_thread", "trigger_id": "trig-http-sc",
               "team": {"id": "T0FAKETEAM"}, "user": {"id": "U2147483697"}, "channel": {"id": "C123ABC456"},
               "message": {"type": "message", "ts": root.ts, "user": "U0ALICE", "text": "which region first?"},
               "response_url": fake_slack.response_url(), "token": "x"}
    form = urlencode({"payload": json.dumps(payload)})
    async with session.post(url, data=form, headers=signed(form, content_type="application/x-www-form-urlencoded")) as resp:
        assert resp.status == 200
    await fake_slack.wait_for(lambda: fake_slack.bot_messages())
    await adapter.idle()
    await app.router.drain()
    [post] = fake_slack.bot_messages()
    assert post.thread_ts == root.ts and "eu-west first" in post.text
