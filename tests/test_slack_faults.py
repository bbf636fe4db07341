"""Slack failures handled as Slack documents them, through the real SDKs and the fake
Slack (which enforces the documented tiers): a deleted message ends the answer quietly,
a refused edit does not burn the workspace's budget, a channel the bot is not in gets the
whole answer once through the command with a word on why, and a final write that fails
is never lost."""
from __future__ import annotations

import asyncio

from tests.fakes.openai_server import Script
from tests.fakes.slack_server import BOT_USER
from tests.slack_support import *  # noqa: F401,F403
from tests.slack_support import load

CHANNEL = "C123ABC456"
WORDS = " ".join(f"word{i}" for i in range(40)) + " end."


async def test_a_deleted_message_ends_the_answer_quietly_with_edits(slack, fake_llm):
    fake = slack.fake
    fake.fail("chat.startStream", "not_allowed")
    fake_llm.enqueue(Script(text=WORDS, tokens_per_second=20))
    await slack.event(load("app_mention"), settle=False)
    await fake.wait_for(lambda: fake.bot_messages(CHANNEL))
    first = fake.bot_messages(CHANNEL)[0]
    fake.delete_message(CHANNEL, first.ts)
    await slack.settle()
    refused = [c for c in fake.calls_to("chat.update") if not c.ok]
    assert len(refused) == 1  # one message_not_found, then silence
    assert fake.bot_messages(CHANNEL) == []  # nothing re-posted, no error note
    assert len(fake.calls_to("chat.postMessage")) == 1


async def test_a_deleted_native_stream_ends_the_answer_quietly(slack, fake_llm):
    fake = slack.fake
    fake_llm.enqueue(Script(text=WORDS, tokens_per_second=20))
    await slack.event(load("app_mention"), settle=False)
    await fake.wait_for(lambda: fake.calls_to("chat.appendStream"))
    [msg] = fake.bot_messages(CHANNEL)
    fake.delete_message(CHANNEL, msg.ts)
    await slack.settle()
    after = [c for c in fake.calls if c.method.startswith("chat.") and c.at > fake.calls_to("chat.appendStream")[0].at]
    assert sum(not c.ok for c in after) == 1 and fake.bot_messages(CHANNEL) == []
    assert fake.calls_to("chat.postMessage") == []


async def test_a_failing_chat_update_is_paced_like_a_successful_one_and_the_answer_still_arrives(slack, fake_llm):
    fake = slack.fake
    slack.adapter.settings.update_interval = 0.5
    fake.fail("chat.startStream", "not_allowed")
    fake.fail("chat.update", "internal_error")  # every edit refused
    fake_llm.enqueue(Script(text=WORDS, tokens_per_second=40))  # ~1 s of tokens
    await slack.event(load("app_mention"))
    updates = fake.calls_to("chat.update")
    # ~1 s of streaming at one update per 0.5 s, then the final edit's 3 tries: not one per token
    assert len(updates) <= 3 + 3
    texts = [m.text for m in fake.bot_messages(CHANNEL)]
    # the first post, then the text it was missing: the whole answer, nothing lost
    assert len(texts) == 2 and WORDS.startswith(texts[0]) and WORDS.endswith(texts[1])
    assert len(texts[0]) + len(texts[1]) >= len(WORDS)


async def test_a_command_in_a_channel_the_bot_is_not_in_gets_the_whole_answer_once_with_the_reason(slack, fake_llm):
    fake = slack.fake
    fake.fail("chat.postMessage", "not_in_channel")
    fake.fail("chat.startStream", "not_in_channel")
    fake_llm.enqueue(Script(text=WORDS, tokens_per_second=40))
    await slack.command("/agent", "count to forty")
    public = [r for r in fake.responses if r.get("response_type") == "in_channel"]
    assert len(public) == 1
    assert public[0]["text"].startswith(WORDS) and "not a member of this channel" in public[0]["text"]
    assert f"/invite <@{BOT_USER}>" in public[0]["text"]
    assert fake.calls_to("chat.update") == []  # no edits of a message that cannot be edited


async def test_a_mention_where_the_bot_may_not_post_is_answered_in_a_dm_saying_why(slack, fake_llm):
    fake = slack.fake
    fake.fail("chat.startStream", "not_allowed")
    fake.fail("chat.postMessage", "restricted_action", times=1)
    fake_llm.enqueue(Script(text="The short answer.", tokens_per_second=40))
    await slack.event(load("app_mention"))
    user = load("app_mention")["event"]["user"]
    dm = fake.bot_messages(user)
    assert dm[0].text.startswith(f"I couldn't answer in <#{CHANNEL}>: I may not post in this channel")
    assert dm[-1].text == "The short answer."
    assert fake.bot_messages(CHANNEL) == []


async def test_a_refused_final_append_is_posted_as_a_new_message_never_lost(slack, fake_llm):
    fake = slack.fake
    fake_llm.enqueue(Script(text=WORDS, tokens_per_second=40))
    await slack.event(load("app_mention"), settle=False)
    await fake.wait_for(lambda: fake.calls_to("chat.appendStream"))
    fake.fail("chat.appendStream", "internal_error")  # from now on every append is refused
    await slack.settle()
    streamed = fake.calls_to("chat.startStream")[0]
    texts = [m.text for m in fake.bot_messages(CHANNEL)]
    assert texts[-1].endswith("word39 end.")  # the missing text, posted
    assert len(fake.calls_to("chat.postMessage")) == 1 and streamed
    assert fake.calls_to("chat.stopStream")  # and the stream is closed


async def test_a_failing_stop_stream_hides_nothing(slack, fake_llm):
    fake = slack.fake
    fake.fail("chat.stopStream", "internal_error")
    fake_llm.enqueue(Script(text=WORDS, tokens_per_second=40))
    await slack.event(load("app_mention"))
    [msg] = fake.bot_messages(CHANNEL)
    assert msg.text == WORDS  # the last text went with an append, not with the refused stop
    assert all(not c.args.get("markdown_text") for c in fake.calls_to("chat.stopStream"))


async def test_thirty_answers_at_once_stay_within_the_tier_2_budget_of_start_and_stop_stream(slack, fake_llm):
    """chat.startStream and chat.stopStream are Tier 2 (~20/min): answers past the budget
    post and edit instead of waiting, and no stop is refused with a 429."""
    fake = slack.fake
    n = 30
    fake_llm.enqueue(*[Script(text=f"answer {i} " + WORDS, tokens_per_second=40) for i in range(n)])
    for i in range(n):
        await slack.event(load("app_mention", event_id=f"EvT2{i:03d}", ts=f"1516000000.{i:06d}",
                               text=f"<@{BOT_USER}> question {i}"), settle=False)
    await slack.settle(timeout=60)
    assert fake.rate_limited == 0
    answers = sorted(m.text for m in fake.bot_messages(CHANNEL) if m.thread_ts)
    assert answers == sorted(f"answer {i} " + WORDS for i in range(n))
    assert len(fake.calls_to("chat.startStream")) <= 20 and not any(m.streaming for m in fake.bot_messages(CHANNEL))


async def test_when_the_workspace_edit_budget_is_backed_up_answers_are_posted_whole(slack, fake_llm):
    """More answers at once than chat.update's Tier 3 carries: a new answer is not posted
    early and edited (its edits would wait minutes) but posted once, whole, at the end
    (chat.postMessage is limited per channel)."""
    import time

    fake = slack.fake
    fake.fail("chat.startStream", "not_allowed")  # the post-and-edit path
    budget = slack.adapter.workspace("T0FAKETEAM").budget
    budget._due[("chat.update", "")] = time.monotonic() + 600  # ten minutes of edits already queued here
    fake_llm.enqueue(Script(text=WORDS, tokens_per_second=40))
    await slack.event(load("app_mention"))
    assert fake.calls_to("chat.update") == []
    [answer] = fake.bot_messages(CHANNEL)
    assert answer.text.strip() == WORDS  # whole, in one post
