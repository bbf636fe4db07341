"""The patterns end to end on Slack: the real adapter (slack-bolt + slack_sdk in Socket
Mode) on the fake Slack, the composed bot behind it. The agent answers a data question
with the numbers SQL gives; `/digest` schedules in the asker's Slack time zone and the
scheduler posts once through the adapter's channel opener, paging the channel's history;
the "Summarize thread" message shortcut and `@aibot summarize` in a thread summarize
that thread."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from patterns.batch.schedules import DigestStore
from tests.slack_support import *  # noqa: F401,F403
from tests.slack_support import load
from tests.test_agent_loop import TASK, analyst, expected_totals, numbers  # noqa: F401 (fixture)
from tests.test_digest import Clock, scheduler

CHANNEL = "C123ABC456"
STEVE = "U2147483697"  # the user of the slash command fixture
UTC = timezone.utc


# ----------------------------------------------------------------------------- agent


@pytest.mark.slow
async def test_agent_answers_a_data_question_with_the_numbers_sql_gives_via_mention_and_command(slack, analyst, sales_db):
    fake = slack.fake
    before, last = await expected_totals(sales_db)
    growth = round((last - before) / before * 100, 1)

    await slack.event(load("app_mention", text=f"<@U0BOTUSER> {TASK}"))
    [mention_answer] = fake.bot_messages(CHANNEL)  # steps and answer in one message, in the mention's thread
    assert mention_answer.thread_ts == "1515449522.000016"
    await slack.command("/agent", TASK)
    answers = fake.bot_messages(CHANNEL)
    assert len(answers) == 2  # the command's answer: one more message, nothing else
    for msg in answers:
        assert "▸ running SQL:" in msg.text and "SELECT date_trunc('month', order_date)" in msg.text
        final = msg.text.strip().splitlines()[-1]
        assert final.startswith("Total sales for")
        found = numbers(final)
        assert last in found and before in found and growth in found
        # the message grew: a step was visible before the answer
        assert len(msg.versions) >= 2 and "Total sales" not in msg.versions[0]
    assert fake.ephemeral == []  # no error notes


# ----------------------------------------------------------------------------- digests


async def test_digest_on_without_a_zone_uses_the_askers_slack_time_zone(slack, app):
    slack.fake.timezones[STEVE] = "America/Los_Angeles"
    await slack.command("/digest", "on 09:00")
    reply = slack.fake.responses[-1]
    assert reply["response_type"] == "ephemeral"
    assert "09:00 America/Los_Angeles, every day" in reply["text"]
    [sched] = await DigestStore(app.services.db).all()
    assert (sched.platform, sched.channel, sched.spec.tz) == ("slack", CHANNEL, "America/Los_Angeles")
    # an explicit zone wins over the profile's
    await slack.command("/digest", "on 07:30 Europe/Berlin")
    assert "07:30 Europe/Berlin" in slack.fake.responses[-1]["text"]
    assert [c.args["user"] for c in slack.fake.calls_to("users.info")] == [STEVE]  # cached


async def test_scheduled_digest_posts_once_into_the_slack_channel_reading_every_history_page(slack, app, fake_llm):
    fake = slack.fake
    now = datetime.now(UTC)
    at = (now + timedelta(hours=1)).replace(second=0, microsecond=0)
    await slack.command("/digest", f"on {at:%H:%M} UTC")
    assert f"{at:%H:%M} UTC" in fake.responses[-1]["text"]
    lines = [f"update {i}: the migration step {i} is done" for i in range(10)]
    for i, line in enumerate(lines):
        fake.add_message(CHANNEL, line, user="U0BOB" if i % 2 else "U0ALICE",
                         ts=f"{now.timestamp() - 3600 + i * 60:.6f}")
    fake.add_message(CHANNEL, "from two days ago", ts=f"{now.timestamp() - 2 * 86_400:.6f}")
    fake.add_message("C0OTHER", "another channel's chatter", ts=f"{now.timestamp() - 60:.6f}")

    fake_llm.enqueue("Topics: the migration. Action items: Bob: finish step 10.")
    clock = Clock(at + timedelta(seconds=20))
    sched = scheduler(app, clock=clock)
    try:
        assert await sched.tick() == 1
        assert await sched.tick() == 0  # the same period again: nothing
    finally:
        await sched.stop()

    [post] = fake.bot_messages()
    assert post.channel == CHANNEL and post.thread_ts is None  # into the channel, not a thread
    assert post.text.startswith("*Daily digest* (10 messages since")
    assert "Bob: finish step 10" in post.text
    pages = fake.calls_to("conversations.history")
    assert len(pages) >= 4 and sum(1 for c in pages if c.args.get("cursor")) >= 3  # Slack's cursor paging
    transcript = fake_llm.chat_requests[-1]["messages"][-1]["content"]
    assert all(line in transcript for line in lines)
    assert "Bob: update 1" in transcript  # people by name
    assert "two days ago" not in transcript and "another channel" not in transcript


# ----------------------------------------------------------------------------- threads


def shortcut(fake, *, message_ts: str, thread_ts: str | None = None, trigger: str = "trig-sc-1") -> dict:
    """A message shortcut payload as Slack sends it (type message_action)."""
    message = {"type": "message", "user": "U0ALICE", "ts": message_ts, "text": "a message"}
    if thread_ts:
        message["thread_ts"] = thread_ts
    return {"type": "message_action", "callback_id": "summarize_thread", "trigger_id": trigger,
            "action_ts": f"{time.time():.6f}", "team": {"id": "T0FAKETEAM", "domain": "example"},
            "user": {"id": STEVE, "username": "steve", "team_id": "T0FAKETEAM"},
            "channel": {"id": CHANNEL, "name": "test"}, "message": message,
            "response_url": fake.response_url(), "token": "x"}


def thread(fake) -> str:
    root = fake.add_message(CHANNEL, "should we move the launch?", user="U0ALICE")
    fake.add_message(CHANNEL, "yes, QA found two blockers", user="U0BOB", thread_ts=root.ts)
    fake.add_message(CHANNEL, "then Thursday it is", user="U0ALICE", thread_ts=root.ts)
    fake.add_message(CHANNEL, "unrelated channel talk", user="U0BOB")
    return root.ts


async def test_summarize_thread_shortcut_acks_at_once_and_answers_in_that_thread(slack, fake_llm):
    fake = slack.fake
    root = thread(fake)
    reply_ts = [m.ts for m in fake.messages.values() if m.thread_ts == root][-1]
    fake_llm.enqueue("Launch moves to Thursday because of two QA blockers.")
    payload = shortcut(fake, message_ts=reply_ts, thread_ts=root)  # used on a reply: its whole thread
    env = await slack.interactive(payload)
    assert fake.envelopes[env].acked_at - fake.envelopes[env].sent_at < 3.0
    [post] = fake.bot_messages()
    assert post.thread_ts == root
    assert post.text.startswith("*Summary of this thread* (3 messages)") and "Thursday" in post.text
    prompt = fake_llm.chat_requests[-1]["messages"][-1]["content"]
    assert "Bob: yes, QA found two blockers" in prompt and "unrelated" not in prompt

    # the same shortcut delivered twice is answered once
    await slack.interactive(payload)
    assert len(fake.bot_messages()) == 1 and len(fake_llm.chat_requests) == 1


async def test_mention_summarize_in_a_thread_summarizes_that_thread(slack, fake_llm):
    fake = slack.fake
    root = thread(fake)
    fake_llm.enqueue("Launch moves to Thursday.")
    await slack.event(load("app_mention", event_id="EvSUM1", text="<@U0BOTUSER> summarize this thread please",
                           ts=fake.next_ts(), thread_ts=root))
    [post] = fake.bot_messages()
    assert post.thread_ts == root and post.text.startswith("*Summary of this thread* (3 messages)")
    request = fake_llm.chat_requests[-1]
    assert "tools" not in request and "then Thursday it is" in request["messages"][-1]["content"]

    # a question that merely mentions summaries still goes to chat
    await slack.event(load("app_mention", event_id="EvSUM2", text="<@U0BOTUSER> how do I summarize a PDF?",
                           ts=fake.next_ts(), thread_ts=root))
    assert "Summary of" not in fake.bot_messages()[-1].text


async def test_a_malformed_shortcut_payload_is_acknowledged_and_changes_nothing(slack, fake_llm):
    payload = shortcut(slack.fake, message_ts="1.1", trigger="trig-bad")
    del payload["message"]
    env = await slack.interactive(payload)
    assert slack.fake.envelopes[env].acked_at is not None
    assert fake_llm.chat_requests == [] and slack.fake.bot_messages() == [] and slack.fake.responses == []
