"""Stop and Regenerate when the press reaches another process than the one that wrote
the answer (`aibot run --workers N`, replicas, a restart): two bots (two `App`s on one
database, each with its own Slack adapter and Socket Mode connection to the fake Slack),
the question delivered to the first, the press to the second."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text

from adapters.slack.adapter import SlackAdapter
from bot.app import App
from bot.core.answer_store import AnswerStore, question_from, question_json
from bot.core.answers import Answers
from bot.core.messages import Attachment, Incoming
from tests.fakes.openai_server import Script
from tests.slack_support import *  # noqa: F401,F403
from tests.slack_support import SlackBot, load
from tests.test_slack_controls import ASKER, CHANNEL, LONG, MENTION_TS, buttons, press


@pytest.fixture
async def pair(settings, fake_slack, slack_settings):
    """Two bot processes' worth of bot on one database and one Slack app: `first` got the
    first Socket Mode connection, `second` the other."""
    bots, apps = [], []
    for index in range(2):
        app = await App.open(settings)
        apps.append(app)
        adapter = SlackAdapter(settings=slack_settings)
        await app.attach(adapter)
        await fake_slack.wait_for(lambda: len(fake_slack._ws) == index + 1)
        bots.append(SlackBot(app, adapter, fake_slack, connection=index))
    yield bots
    for bot, app in zip(bots, apps):
        await app.router.drain()
        await bot.adapter.stop()
        await app.close()


async def control_rows(app, **params):
    async with app.services.db.session() as s:
        return (await s.execute(text("SELECT id, running, stop_requested IS NOT NULL, message FROM answer_controls"),
                                params)).all()


async def test_stop_pressed_in_another_process_stops_the_answer(pair, fake_llm):
    first, second = pair
    fake = first.fake
    fake.fail("chat.startStream", "not_allowed")  # post + edits: the Stop button shows while it is written
    fake_llm.enqueue(Script(text=LONG, tokens_per_second=40))
    await first.event(load("app_mention"), settle=False)
    await fake.wait_for(lambda: any("aibot_stop" in buttons(m.blocks) for m in fake.bot_messages(CHANNEL)))
    answer = buttons(fake.bot_messages(CHANNEL)[-1].blocks)["aibot_stop"]
    assert first.app.services.answers.get(answer) is not None and second.app.services.answers.get(answer) is None
    await fake.wait_for(lambda: first.app.services.answers._listener.connected.is_set())
    await asyncio.sleep(0.3)

    await second.interactive(press("stop", answer))  # reaches the process that is not writing it
    await first.settle()
    msg = fake.bot_messages(CHANNEL)[-1]
    assert msg.text.endswith("_(stopped)_")
    written = msg.text.removesuffix("_(stopped)_").strip()
    assert written and LONG.startswith(written) and len(written) < len(LONG) / 2
    assert set(buttons(msg.blocks)) == {"aibot_regenerate", "aibot_good", "aibot_bad"}
    assert fake.ephemeral == []  # nothing to tell the presser: it stopped
    await first.app.services.answers.settle()
    assert await control_rows(first.app) == [(answer, False, True, msg.ts)]


async def test_only_the_asker_stops_it_from_another_process_and_a_finished_one_says_so(pair, fake_llm):
    first, second = pair
    fake = first.fake
    fake.fail("chat.startStream", "not_allowed")
    fake_llm.enqueue(Script(text=LONG, tokens_per_second=150))
    await first.event(load("app_mention"), settle=False)
    await fake.wait_for(lambda: any("aibot_stop" in buttons(m.blocks) for m in fake.bot_messages(CHANNEL)))
    answer = buttons(fake.bot_messages(CHANNEL)[-1].blocks)["aibot_stop"]
    await first.app.services.answers.settle()  # its row is written

    await second.interactive(press("stop", answer, user="U0BOB"))
    assert "Only the person who asked" in fake.ephemeral[-1]["text"] and fake.ephemeral[-1]["user"] == "U0BOB"
    await first.settle(timeout=30)
    assert fake.bot_messages(CHANNEL)[-1].text == LONG  # not stopped
    await first.app.services.answers.settle()
    await second.interactive(press("stop", answer))
    assert "already finished" in fake.ephemeral[-1]["text"]


async def test_regenerate_pressed_in_another_process_answers_the_stored_question_again(pair, fake_llm):
    first, second = pair
    fake = first.fake
    fake_llm.enqueue("First try.", "Second try.")
    await first.event(load("app_mention"))
    answer = buttons(fake.bot_messages(CHANNEL)[-1].blocks)["aibot_regenerate"]
    await first.app.services.answers.settle()

    await second.interactive(press("regenerate", answer, user="U0BOB"))
    assert "Only the person who asked" in fake.ephemeral[-1]["text"]
    await second.interactive(press("regenerate", answer))
    msgs = fake.bot_messages(CHANNEL)
    assert [m.text for m in msgs] == ["First try.", "Second try."]
    assert msgs[-1].thread_ts == MENTION_TS  # in the asker's thread, like the first answer
    assert fake_llm.chat_requests[0]["messages"][-1] == fake_llm.chat_requests[1]["messages"][-1]
    # the second answer is the second process's: its own controls, its own row
    again = buttons(msgs[-1].blocks)["aibot_regenerate"]
    assert again != answer and second.app.services.answers.get(again) is not None


async def test_a_stop_nobody_hears_says_so(pair, fake_llm, monkeypatch):
    """The process writing the answer died (kill -9) before marking it finished: the
    press says the answer could not be reached instead of pretending."""
    import bot.core.presses as presses

    monkeypatch.setattr(presses, "STOP_ACK_SECONDS", 0.5)
    first, second = pair
    store = second.app.services.answers.store
    orphan = Answers().begin(Incoming(platform="slack", tenant="T0FAKETEAM", channel=CHANNEL, user=ASKER,
                                                 text="q", thread=MENTION_TS), conv=None)
    await store.remember(orphan, "1700000009.000001")  # a row whose process is gone
    await second.interactive(press("stop", orphan.id))
    assert "couldn't reach the process" in second.fake.ephemeral[-1]["text"]


async def test_the_listener_catches_a_stop_sent_while_it_was_reconnecting(app, fake_llm):
    """NOTIFY is lost while the listening connection is down: the flag is read after it
    reconnects."""
    from tests.test_answer_controls import ControlledConversation, endless
    from bot.core.render import render_stream

    answers = app.services.answers
    msg = Incoming(platform="test", tenant="T", channel="C", user="U", text="go")
    conv = ControlledConversation()
    answer = answers.begin(msg, conv)
    task = asyncio.create_task(render_stream(endless(), conv, answer=answer))
    listener = answers._listener
    await asyncio.wait_for(listener.connected.wait(), 10)
    while answer.message is None:
        await asyncio.sleep(0.01)
    await answers.settle()
    async with app.services.db.session.begin() as s:  # the listener's connection dies
        killed = (await s.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": listener.pid})).scalar()
    assert killed
    await asyncio.sleep(0.05)
    assert await answers.store.request_stop(answer.id)  # its NOTIFY reaches nobody
    result = await asyncio.wait_for(task, 10)
    assert result.stopped and conv.texts[0].endswith("_(stopped)_")


async def test_questions_survive_the_round_trip_and_rows_are_purged_and_deleted_with_their_tenant(app):
    msg = Incoming(platform="discord", tenant="G1", channel="C1", user="U1", text="what is this?", id="m1",
                   thread="t1", mentioned=True, command="ask", options={"n": 3, "file": Attachment("a.png", "u", 5)},
                   attachments=(Attachment("a.png", "https://x/a.png", 5, "image/png"),), timezone="Europe/Paris")
    again = question_from(question_json(msg))
    assert again == msg and again.options == msg.options and again.ts == msg.ts

    store = AnswerStore(app.services.db, retention=timedelta(days=7))
    answers = Answers()  # ids only: no listener (it purges on its own when it starts)
    old, kept = answers.begin(msg, None), answers.begin(msg, None)
    await store.remember(old, "m2")
    await store.remember(kept, "m3")
    async with app.services.db.session.begin() as s:
        await s.execute(text("UPDATE answer_controls SET created_at = now() - interval '8 days' WHERE id = :id"),
                        {"id": old.id})
    assert await store.purge() == 1
    assert (await store.find(kept.id)).question == msg and await store.find(old.id) is None
    assert (await store.by_message("discord", "C1", "m3")).id == kept.id
    exported = await app.services.tenants.export("discord", "G1")
    assert [row["id"] for row in exported["answers"]] == [kept.id]
    counts = await app.services.tenants.delete("discord", "G1")
    assert counts["answer_controls"] == 1 and await store.find(kept.id) is None


async def test_a_stop_reaction_reaching_another_process_stops_the_native_stream(pair, fake_llm):
    first, second = pair
    fake = first.fake
    fake_llm.enqueue(Script(text=LONG, tokens_per_second=40))
    await first.event(load("app_mention"), settle=False)
    await fake.wait_for(lambda: any(m.streaming and m.reactions for m in fake.bot_messages(CHANNEL)))
    [msg] = fake.bot_messages(CHANNEL)
    await first.app.services.answers.settle()  # its row (with the stream's ts) is written
    await fake.wait_for(lambda: first.app.services.answers._listener.connected.is_set())

    await second.event(fake.reaction(CHANNEL, msg.ts, "octagonal_sign", ASKER))
    await first.settle()
    assert not msg.streaming and msg.text.endswith("_(stopped)_") and len(msg.text) < len(LONG) / 2
    assert set(buttons(msg.blocks)) == {"aibot_regenerate", "aibot_good", "aibot_bad"}


# --- the assistant panel's thread context ------------------------------------------------


async def test_the_panels_viewed_channel_and_title_are_shared_through_the_greetings_metadata(pair, fake_llm):
    """The panel was opened and switched channels at the first process; questions reach the
    second (or the first after a restart): it reads the context where Bolt's default store
    keeps it, the greeting's message metadata, and does not title the thread twice."""
    from tests.test_slack_assistant import PANEL, THREAD, VIEWING, ask

    first, second = pair
    fake = first.fake
    fake.add_message(VIEWING, "Release 2.4 ships on Thursday", user="U0ALICE")
    fake.add_message("C0OTHER", "lunch menu: soup", user="U0BOB")
    await first.event(load("assistant_thread_started"))
    [greeting] = fake.bot_messages(PANEL)
    assert greeting.metadata == {"event_type": "assistant_thread_context",
                                 "event_payload": {"channel_id": "C123ABC456", "team_id": "T0FAKETEAM",
                                                   "enterprise_id": None}}
    changed = load("assistant_thread_context_changed")
    changed["event"]["assistant_thread"]["context"]["channel_id"] = VIEWING
    await first.event(changed)
    assert greeting.metadata["event_payload"]["channel_id"] == VIEWING  # chat.update of the greeting

    fake_llm.enqueue("Release 2.4 ships Thursday.", "It was a release note.")
    await second.event(ask("Summarize this channel", n=1))
    assert [c.args["channel"] for c in fake.calls_to("conversations.history")] == [VIEWING]
    assert "soup" not in str(fake_llm.chat_requests[-1]["messages"])
    await second.event(ask("What was that about?", n=2))
    assert [c.args["title"] for c in fake.calls_to("assistant.threads.setTitle")] == ["Summarize this channel"]

    # the user switches again, heard by the second process; the first one answers next
    changed["event"]["assistant_thread"]["context"]["channel_id"] = "C0OTHER"
    changed["event_id"] = "Ev0CHANGED2"
    await second.event(changed)
    fake_llm.enqueue("Soup for lunch.")
    await first.event(ask("Summarize this channel", n=3))
    assert [c.args["channel"] for c in fake.calls_to("conversations.history")][-1] == "C0OTHER"
    assert len(fake.calls_to("assistant.threads.setTitle")) == 1
    assert all(m.thread_ts == THREAD for m in fake.bot_messages(PANEL))
