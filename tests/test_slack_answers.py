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


async def test_dm_is_answered_in_place_with_the_dm_history_as_context(slack, fake_llm):
    fake = slack.fake
    dm = "D024BE91L"
    fake.add_message(dm, "my favourite colour is teal", user="U2147483697", ts="1355517000.000001")
    fake.add_message(dm, "Noted!", user=BOT_USER, bot=True, ts="1355517001.000001")
    fake_llm.enqueue("I hear you.")
    await slack.event(load("message_im"))

    post = fake.calls_to("chat.postMessage")
    assert len(post) == 1 and post[0].args["channel"] == dm and "thread_ts" not in post[0].args
    assert fake.bot_messages(dm)[-1].text == "I hear you."
    assert fake.calls_to("chat.startStream") == []  # a DM outside a thread has no stream
    sent = fake_llm.chat_requests[-1]["messages"]
    assert sent[1] == {"role": "user", "content": "Steve: my favourite colour is teal"}  # by name
    assert sent[2] == {"role": "assistant", "content": "Noted!"}
    assert sent[-1]["content"] == "Steve: Hello hello can you hear me?"
    assert sum(1 for m in sent if "can you hear me" in m["content"]) == 1  # not twice


async def test_follow_up_in_the_bots_thread_keeps_the_thread_newest_first_within_budget(slack, fake_llm):
    fake = slack.fake
    fake_llm.enqueue("First answer.")
    await slack.event(load("app_mention"))  # the bot now takes part in this thread
    # a long thread (read back in pages of 3): an old huge message that cannot fit the budget
    fake.add_message(CHANNEL, "ANCIENT " + "blah " * 20_000, thread_ts=MENTION_TS, ts="1515449530.000001")
    for i in range(6):
        fake.add_message(CHANNEL, f"note {i}: gamma is {i}", thread_ts=MENTION_TS, ts=f"1515449540.00000{i}")
    fake_llm.enqueue("Delta follows gamma.")
    await slack.event(load("message_thread_reply"))

    assert fake.bot_messages(CHANNEL)[-1].text == "Delta follows gamma."
    assert fake.bot_messages(CHANNEL)[-1].thread_ts == MENTION_TS
    replies = fake.calls_to("conversations.replies")
    assert len(replies) >= 3 and any(c.args.get("cursor") for c in replies)  # paged
    prompt = " ".join(m["content"] for m in fake_llm.chat_requests[-1]["messages"])
    assert "note 5: gamma is 5" in prompt and "note 0: gamma is 0" in prompt
    assert "First answer." in prompt
    assert "ANCIENT" not in prompt  # trimmed to the budget, newest kept
    assert prompt.endswith("and what about the delta?")


async def test_replies_in_threads_the_bot_is_not_in_are_left_alone(slack, fake_llm):
    await slack.event(load("message_thread_reply", thread_ts="1515000000.000001", parent_user_id="U061F7AUR"))
    await slack.event(load("message_thread_reply", event_id="Ev0CHATTER", thread_ts=None, ts="1515449700.000001"))
    assert fake_llm.chat_requests == []
    assert slack.fake.bot_messages() == []


async def test_a_retried_event_is_answered_once(slack, fake_llm):
    fake_llm.enqueue("Only once.")
    await slack.event(load("app_mention"))
    await slack.event(load("app_mention"), retry_attempt=1)
    await slack.event(load("app_mention"), retry_attempt=2)
    assert len(fake_llm.chat_requests) == 1
    assert [m.text for m in slack.fake.bot_messages()] == ["Only once."]


async def test_own_and_other_bots_messages_are_ignored(slack, fake_llm):
    await slack.event(load("message_bot"))
    await slack.event(load("message_im", event_id="Ev0SELF", user=BOT_USER, bot_id="B0BOTID", text="I said this"))
    assert fake_llm.chat_requests == []
    writes = {"chat.postMessage", "chat.startStream", "chat.update", "chat.postEphemeral"}
    assert [c for c in slack.fake.calls if c.method in writes] == []


async def test_rate_limited_update_is_retried_after_retry_after_and_the_answer_is_whole(slack, fake_llm):
    fake = slack.fake
    fake.fail("chat.startStream", "not_allowed")
    fake.rate_limit("chat.update", times=1, retry_after=1)
    fake_llm.enqueue(Script(text=ANSWER, tokens_per_second=12))
    await slack.event(load("app_mention"))
    limited = [c for c in fake.calls if c.method == "chat.update" and c.status == 429]
    assert len(limited) == 1
    retried = [c for c in fake.calls_to("chat.update") if c.at > limited[0].at]
    assert retried and retried[0].at - limited[0].at >= 1.0  # waited for Retry-After
    assert final_text(fake) == ANSWER.replace("**calm**", "*calm*")


async def test_model_failure_midway_closes_the_message_with_a_short_note(slack, fake_llm):
    fake = slack.fake
    fake_llm.enqueue(Script(text=ANSWER, cut_after=6))
    fake_llm.enqueue(Script(text=ANSWER, cut_after=6))  # the LLM client retries once... and fails again
    fake_llm.enqueue(Script(text=ANSWER, cut_after=6))
    await slack.event(load("app_mention"))
    assert len(fake.calls_to("chat.stopStream")) == 1  # the stream is closed, not left spinning
    text = final_text(fake)
    assert text.startswith("The river is wide")
    assert "Answer cut short" in text
    for leak in ("Traceback", "Exception", "Error(", "httpx", "openai"):
        assert leak not in text


async def test_long_answer_continues_in_a_new_message_without_breaking_the_code_block(slack, fake_llm):
    fake = slack.fake
    code = "\n".join(f"    value_{i} = compute({i})  # step {i}" for i in range(160))
    answer = "Here is the script:\n\n```python\ndef main():\n" + code + "\n```\n\nRun it with `python main.py`."
    assert len(answer) > 4_000
    fake_llm.enqueue(answer)
    await slack.event(load("app_mention"))
    msgs = fake.bot_messages(CHANNEL)
    assert len(msgs) >= 2
    assert all(len(m.text) <= 4_000 for m in msgs)
    assert msgs[0].text.rstrip().endswith("```")
    assert msgs[1].text.startswith("```python")
    assert all(m.text.count("```") % 2 == 0 for m in msgs)
    assert msgs[-1].text.endswith("Run it with `python main.py`.")
