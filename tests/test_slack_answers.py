"""Mentions, DMs and thread follow-ups on a fake Slack, through the real slack-bolt
(Socket Mode) and slack_sdk clients: what a user sees in the channel."""
from __future__ import annotations

from tests.fakes.openai_server import Script
from tests.fakes.slack_server import BOT_USER, TEAM
from tests.slack_support import *  # noqa: F401,F403
from tests.slack_support import load

ANSWER = "The river is wide, deep and **calm** here. It is everything a river should be, mostly."
CHANNEL = "C123ABC456"
MENTION_TS = "1515449522.000016"


def final_text(fake, channel=CHANNEL):
    msgs = fake.bot_messages(channel)
    assert msgs, "the bot wrote nothing"
    return msgs[-1].text


async def test_mention_is_answered_in_its_thread_with_a_native_stream(slack, fake_llm):
    fake = slack.fake
    fake_llm.enqueue(Script(text=ANSWER, tokens_per_second=15))
    await slack.event(load("app_mention"))

    start = fake.calls_to("chat.startStream")
    assert len(start) == 1
    assert start[0].args["thread_ts"] == MENTION_TS and start[0].args["channel"] == CHANNEL
    assert start[0].args["recipient_user_id"] == "U061F7AUR" and start[0].args["recipient_team_id"] == TEAM
    assert fake.calls_to("chat.appendStream") and len(fake.calls_to("chat.stopStream")) == 1
    msg = fake.bot_messages(CHANNEL)[-1]
    assert msg.thread_ts == MENTION_TS
    assert msg.text == ANSWER  # Markdown as the model wrote it: markdown_text renders it
    assert len(msg.versions) > 1  # it appeared progressively
    assert fake.calls_to("chat.postMessage") == [] and fake.calls_to("chat.update") == []
    # the question reached the model without the bot's mention
    assert fake_llm.chat_requests[-1]["messages"][-1]["content"].endswith("is it everything a river should be?")
    assert f"<@{BOT_USER}>" not in str(fake_llm.chat_requests[-1]["messages"])


async def test_thinking_status_shows_until_the_first_words(slack, fake_llm):
    fake = slack.fake
    fake_llm.enqueue(Script(text=ANSWER, ttft=0.3))
    await slack.event(load("app_mention"))
    statuses = [c for c in fake.calls if c.method == "assistant.threads.setStatus"]
    assert [c.args["status"] for c in statuses] == ["is thinking…", ""]
    assert statuses[0].args["thread_ts"] == MENTION_TS
    first_write = next(c for c in fake.calls if c.method == "chat.startStream")
    assert statuses[0].at < first_write.at


async def test_workspace_without_streaming_gets_post_and_throttled_edits(slack, fake_llm):
    fake = slack.fake
    fake.fail("chat.startStream", "not_allowed")
    fake_llm.enqueue(Script(text=ANSWER, tokens_per_second=12))
    await slack.event(load("app_mention"))

    posts = fake.calls_to("chat.postMessage")
    assert len(posts) == 1 and posts[0].args["thread_ts"] == MENTION_TS
    updates = fake.calls_to("chat.update")
    assert updates, "the answer should appear progressively"
    assert final_text(fake) == ANSWER.replace("**calm**", "*calm*")  # converted to mrkdwn
    # the next answer in this workspace does not ask again
    fake_llm.enqueue("Second answer.")
    await slack.event(load("app_mention", event_id="Ev0SECOND", ts="1515449999.000001"))
    assert len([c for c in fake.calls if c.method == "chat.startStream"]) == 1
    assert final_text(fake) == "Second answer."
