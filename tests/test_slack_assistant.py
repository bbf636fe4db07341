"""Slack's assistant panel through Bolt's Assistant middleware on the fake Slack, with
payloads shaped like Slack's documented assistant_thread_* and message.im events."""
from __future__ import annotations

import time

from tests.fakes.openai_server import Script
from tests.slack_support import *  # noqa: F401,F403
from tests.slack_support import load

PANEL = "D0PANEL01"
THREAD = "1729999327.187299"
VIEWING = "C0RELEASES"


def ask(text: str, *, n: int) -> dict:
    return load("message_im_assistant", event_id=f"Ev0ASK{n}", text=text, ts=f"17299993{n:02d}.000100",
                event_ts=f"17299993{n:02d}.000100")


async def open_panel(slack, *, viewing: str = VIEWING) -> None:
    await slack.event(load("assistant_thread_started"))
    changed = load("assistant_thread_context_changed")
    changed["event"]["assistant_thread"]["context"]["channel_id"] = viewing
    await slack.event(changed)


async def test_a_new_thread_is_greeted_with_the_suggested_prompts(slack):
    await slack.event(load("assistant_thread_started"))
    fake = slack.fake
    [greeting] = fake.bot_messages(PANEL)
    assert greeting.thread_ts == THREAD and greeting.text.startswith("Hi!")
    [prompts] = fake.calls_to("assistant.threads.setSuggestedPrompts")
    assert prompts.args["channel_id"] == PANEL and prompts.args["thread_ts"] == THREAD
    assert [p["title"] for p in prompts.args["prompts"]] == ["Summarize this channel", "Ask the knowledge base",
                                                             "What's new today"]


async def test_a_workspace_admin_chooses_its_own_suggested_prompts(slack):
    store = slack.app.services.prefs  # the workspace settings (what `/aibot settings set` writes)
    await store.set(platform="slack", tenant="T0FAKETEAM", channel="", key="assistant_prompts",
                    value="Ask the handbook => What does the handbook say about expenses?; On call => Who is on call?",
                    actor="U0ADMIN")
    await slack.event(load("assistant_thread_started"))
    [prompts] = slack.fake.calls_to("assistant.threads.setSuggestedPrompts")
    assert prompts.args["prompts"] == [
        {"title": "Ask the handbook", "message": "What does the handbook say about expenses?"},
        {"title": "On call", "message": "Who is on call?"},
    ]


async def test_summarize_this_channel_reads_the_channel_being_viewed_and_answers_in_the_panel(slack, fake_llm):
    fake = slack.fake
    fake.add_message(VIEWING, "Release 2.4 ships on Thursday", user="U0ALICE")
    fake.add_message(VIEWING, "QA found a blocker in the upload flow", user="U0BOB")
    fake.add_message("C0OTHER", "lunch menu: soup", user="U0BOB")
    await open_panel(slack)
    fake_llm.enqueue("Release 2.4 ships Thursday; QA found an upload blocker.")
    await slack.event(ask("Summarize this channel", n=1))

    assert [c.args["channel"] for c in fake.calls_to("conversations.history")] == [VIEWING]
    sent = str(fake_llm.chat_requests[-1]["messages"])
    assert "Release 2.4 ships on Thursday" in sent and "upload flow" in sent and "soup" not in sent
    reply = fake.bot_messages(PANEL)[-1]
    assert reply.thread_ts == THREAD and "Summary of this channel" in reply.text
    [title] = fake.calls_to("assistant.threads.setTitle")
    assert title.args == {**title.args, "channel_id": PANEL, "thread_ts": THREAD, "title": "Summarize this channel"}


async def test_a_question_is_titled_once_shows_status_and_streams_in_the_thread(slack, fake_llm):
    fake = slack.fake
    await open_panel(slack)
    fake_llm.enqueue(Script(text="A river is flowing water.", ttft=0.2), "Rivers end in the sea.")
    await slack.event(ask("What is a river?", n=2))
    await slack.event(ask("Where do they end?", n=3))

    assert [c.args["title"] for c in fake.calls_to("assistant.threads.setTitle")] == ["What is a river?"]
    statuses = [c.args["status"] for c in fake.calls_to("assistant.threads.setStatus")]
    assert statuses[:2] == ["is thinking…", ""]
    streams = fake.calls_to("chat.startStream")
    assert streams and all(c.args["channel"] == PANEL and c.args["thread_ts"] == THREAD for c in streams)
    assert [m.text for m in fake.bot_messages(PANEL)][-2:] == ["A river is flowing water.", "Rivers end in the sea."]
    # the follow-up had the thread as context
    assert "A river is flowing water." in str(fake_llm.chat_requests[-1]["messages"])


async def test_a_channel_the_bot_is_not_in_gets_one_clear_sentence(slack, fake_llm):
    fake = slack.fake
    fake.members_of = {"C123ABC456"}
    await open_panel(slack)
    await slack.event(ask("Summarize this channel", n=4))
    assert fake_llm.chat_requests == []
    assert "invite me there first" in fake.bot_messages(PANEL)[-1].text


async def test_whats_new_today_summarizes_the_last_day_of_the_viewed_channel(slack, fake_llm):
    fake = slack.fake
    fake.add_message(VIEWING, "Deploy went fine", user="U0ALICE", ts=f"{time.time() - 3600:.6f}")
    await open_panel(slack)
    await slack.event(ask("What's new in this channel today?", n=5))
    [history] = fake.calls_to("conversations.history")
    assert history.args["channel"] == VIEWING and float(history.args["oldest"]) > 0
    assert "Summary of this channel, last 1 day" in fake.bot_messages(PANEL)[-1].text
