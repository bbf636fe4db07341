"""SIGTERM and Ctrl-C to `aibot run` serving Slack or Discord (a subprocess, the fakes in
this process): an answer still streaming when the grace period ends is closed with a
visible note (a native Slack stream is stopped), and the process exits 0 / 130."""
from __future__ import annotations

import asyncio
import signal

import pytest

from tests.fakes.discord_server import FakeDiscord
from tests.fakes.openai_server import Script
from tests.fakes.slack_server import APP_TOKEN, BOT_TOKEN
from tests.slack_support import *  # noqa: F401,F403
from tests.slack_support import load
from tests.test_console_e2e import AIBOT

LONG = " ".join(f"w{i}" for i in range(300))  # 30 s of tokens at 10/s


async def run_bot(env: dict) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(AIBOT, "run", env={**env, "AIBOT_SHUTDOWN_GRACE": "1"},
                                                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 0), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
async def test_slack_answer_in_flight_is_closed_with_a_note_on_a_signal(env, fake_slack, fake_llm, sig, code):
    fake_llm.enqueue(Script(text=LONG, tokens_per_second=10))
    proc = await run_bot({**env, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN,
                          "SLACK_API_URL": fake_slack.base_url})
    try:
        await fake_slack.wait_connected(timeout=60)
        await fake_slack.send_event(load("app_mention"))
        await fake_slack.wait_for(lambda: fake_slack.calls_to("chat.appendStream"), timeout=30)
    finally:
        proc.send_signal(sig)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == code, err.decode()[-2000:]
    [msg] = fake_slack.bot_messages("C123ABC456")
    assert not msg.streaming and "cut short" in msg.text and "shutting down" in msg.text
    assert "w299" not in msg.text and b"Fatal Python error" not in err


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 0), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
async def test_discord_answer_in_flight_is_closed_with_a_note_on_a_signal(env, fake_llm, sig, code):
    fake_llm.enqueue(Script(text=LONG, tokens_per_second=10))
    async with FakeDiscord() as fake:
        proc = await run_bot({**env, "DISCORD_BOT_TOKEN": "e2e-token-not-real", "DISCORD_API_URL": fake.api_url})
        try:
            await fake.wait_ready(timeout=60)
            await fake.send_message(f"<@{fake.BOT_ID}> a long story please")
            for _ in range(300):
                if fake.bot_messages():
                    break
                await asyncio.sleep(0.1)
        finally:
            proc.send_signal(sig)
            out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == code, err.decode()[-2000:]
        [reply] = fake.bot_messages()
        assert "cut short" in reply["content"] and "shutting down" in reply["content"]
        assert "w299" not in reply["content"] and b"Fatal Python error" not in err
