"""Slash commands over Socket Mode: each is acknowledged at once (before any slow work),
then answered: publicly for summaries, only to the asker (response_url) for the rest."""
from __future__ import annotations

import asyncio
import time

from bot.core.messages import Reply
from tests.slack_support import *  # noqa: F401,F403

CHANNEL = "C123ABC456"


async def test_every_command_is_acked_before_it_is_answered(slack, fake_llm):
    fake = slack.fake
    started: list[float] = []

    @slack.app.router.command("slowpoke", description="answers after a while")
    async def slowpoke(ctx, msg, what: str = ""):
        started.append(time.monotonic())
        await asyncio.sleep(0.5)
        return Reply(f"done with {what}", ephemeral=True)

    fake_llm.enqueue("A short summary.")
    cases = [("/summarize", "the launch moved to Thursday because QA found two blockers"),
             ("/ai-stats", ""), ("/help", ""), ("/slowpoke", "the thing"), ("/weather", "94070")]
    envelopes = []
    for name, text in cases:
        envelopes.append(await slack.command(name, text))
    for env_id in envelopes:
        env = fake.envelopes[env_id]
        assert env.acked_at is not None and env.acked_at - env.sent_at < 3.0  # Slack's window
    slow = fake.envelopes[envelopes[3]]
    assert slow.acked_at <= started[0] + 0.05  # acked before the slow work, not after it
    slow_reply = next(r for r in fake.responses if r["text"] == "done with the thing")
    assert slow_reply["response_type"] == "ephemeral" and slow_reply["_at"] > slow.acked_at

    summary = fake.calls_to("chat.postMessage")
    assert len(summary) == 1 and summary[0].args["channel"] == CHANNEL
    assert summary[0].args["text"] == "A short summary."
    ephemeral = [r["text"] for r in fake.responses]
    assert any(t.startswith("Model usage") for t in ephemeral)  # /ai-stats, for the asker only
    assert any("/summarize" in t and "Commands" in t for t in ephemeral)  # /help
    assert any(t.startswith("I don't know the command /weather") for t in ephemeral)
    assert all(r["response_type"] == "ephemeral" for r in fake.responses)


async def test_summarize_without_text_summarizes_the_channel_and_with_4h_its_last_hours(slack, fake_llm):
    fake = slack.fake
    now = time.time()
    fake.add_message(CHANNEL, "old news from yesterday", ts=f"{now - 86_000:.6f}")
    fake.add_message(CHANNEL, "we ship on Friday", ts=f"{now - 600:.6f}")
    fake.add_message(CHANNEL, "I will write the notes", user="U0BOB", ts=f"{now - 300:.6f}")
    fake_llm.enqueue("Shipping Friday; Bob writes notes.")
    await slack.command("/summarize", "4h")
    hist = fake.calls_to("conversations.history")
    assert hist and float(hist[0].args["oldest"]) > now - 4 * 3600 - 5
    prompt = fake_llm.chat_requests[-1]["messages"][-1]["content"]
    assert "we ship on Friday" in prompt and "old news" not in prompt
    assert "Bob: I will write the notes" in prompt  # people by name (users.info), not by id
    posted = fake.calls_to("chat.postMessage")[-1].args["text"]
    assert posted.startswith("*Summary of this channel, last 4 hours* (2 messages)")  # Markdown bold → mrkdwn


async def test_command_in_a_channel_the_bot_is_not_in_answers_through_the_command(slack, fake_llm):
    fake = slack.fake
    fake.fail("chat.postMessage", "not_in_channel")
    fake_llm.enqueue("Summary of the pasted text.")
    await slack.command("/summarize", "a long pasted text about the quarterly numbers")
    reply = fake.responses[-1]
    assert reply["response_type"] == "in_channel" and reply["text"].startswith("Summary of the pasted text.")
    assert "not a member of this channel" in reply["text"] and len(fake.responses) == 1


async def test_a_failing_command_gets_a_short_ephemeral_apology(slack, fake_llm):
    @slack.app.router.command("boom", description="fails")
    async def boom(ctx, msg):
        raise RuntimeError("secret internal detail xoxb-123")

    await slack.command("/boom")
    reply = slack.fake.responses[-1]
    assert reply["response_type"] == "ephemeral"
    assert "went wrong" in reply["text"] and "secret" not in reply["text"] and "xoxb" not in reply["text"]
    assert slack.fake.calls_to("chat.postMessage") == []


async def test_interactive_payloads_are_acknowledged_and_change_nothing(slack, fake_llm):
    payload = {"type": "block_actions", "team": {"id": "T0FAKETEAM"}, "user": {"id": "U2147483697"},
               "api_app_id": "A123456", "token": "x", "trigger_id": "t1", "response_url": slack.fake.response_url(),
               "actions": [{"action_id": "feedback_good", "block_id": "b1", "type": "button", "value": "1",
                            "action_ts": "1700000000.1"}],
               "channel": {"id": CHANNEL}, "container": {"type": "message", "message_ts": "1700000000.000001"}}
    env = await slack.fake.send_envelope("interactive", payload)
    await slack.fake.wait_acked(env)
    assert fake_llm.chat_requests == [] and slack.fake.calls_to("chat.postMessage") == []
