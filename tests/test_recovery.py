"""What recovery does with an answer a dead process left open, on the real Slack adapter
(in this process, against the fake Slack): one that cannot be answered again (a second
crash on the same message, a command) is closed with a note and an offer to ask again;
an open native stream is stopped; a posted message gets the note edited in and loses its
Stop button; an answer nothing was shown of yet is reported to the asker."""
from __future__ import annotations

import asyncio
import subprocess

from sqlalchemy import text

from bot.core import processes
from bot.core.dedupe import Dedupe
from bot.core.journal import ANSWERING, Journal
from bot.core.messages import Incoming
from bot.core.recovery import CUT, LOST
from bot.core.spool import HeldSpool
from tests.fakes.slack_server import TEAM, Message
from tests.slack_support import *  # noqa: F401,F403

CHANNEL, ROOT, ASKER = "C123ABC456", "1515449522.000016", "U061F7AUR"


def asked(n: int, *, command: str | None = None) -> Incoming:
    return Incoming(platform="slack", tenant=TEAM, channel=CHANNEL, user=ASKER, text="tell me a story",
                    id=ROOT, thread=None if command else ROOT, mentioned=not command, command=command,
                    dedupe_key=f"slack:event:EvDEAD{n}")


async def left_open(app, msg: Incoming, *, action: str = "answer", messages=(), native=False, attempts=0) -> str:
    """A row as a process killed mid-answer leaves it: open, its lease run out."""
    dead = Journal(db=app.services.db, lease=0.2, owner="elsewhere:1:dead")
    assert await Dedupe(dead.db, journal=dead).first_time(msg.dedupe_key, journal=dead.row(msg, action))
    if messages:
        dead.queue(msg.dedupe_key, ANSWERING, list(messages), native)
        assert await dead.flush(timeout=5)
    async with app.services.db.session.begin() as s:
        await s.execute(text("UPDATE answer_journal SET attempts = :n"), {"n": attempts})
    await asyncio.sleep(0.3)
    return msg.dedupe_key


async def state_of(app, key: str) -> str:
    assert await app.services.journal.flush(timeout=5)
    async with app.services.db.session() as s:
        return (await s.execute(text("SELECT state FROM answer_journal WHERE key = :k"), {"k": key})).scalar()


async def test_a_second_crash_on_one_message_closes_its_stream_with_a_note_instead_of_answering_again(
        app, slack, fake_slack, fake_llm):
    ts = fake_slack.next_ts()
    fake_slack.messages[(CHANNEL, ts)] = stream = Message(CHANNEL, ts, "Once upon a time", thread_ts=ROOT,
                                                          streaming=True)
    key = await left_open(app, asked(1), messages=[ts], native=True, attempts=1)  # taken over once already
    await app.router.recovery.sweep()
    await fake_slack.wait_for(lambda: not stream.streaming, timeout=10)
    assert stream.text.startswith("Once upon a time") and stream.text.endswith(CUT)
    assert [m.ts for m in fake_slack.bot_messages(CHANNEL)] == [ts]  # nothing answered again
    assert fake_llm.chat_requests == []
    assert await state_of(app, key) == "closed"


async def test_a_posted_message_of_a_cut_command_gets_the_note_and_loses_its_stop_button(app, slack, fake_slack,
                                                                                         fake_llm):
    ts = fake_slack.next_ts()
    blocks = [{"type": "markdown", "text": "Half of the summary"},
              {"type": "actions", "elements": [{"type": "button", "action_id": "aibot_stop", "value": "a1",
                                                "text": {"type": "plain_text", "text": "Stop"}}]}]
    fake_slack.messages[(CHANNEL, ts)] = posted = Message(CHANNEL, ts, "Half of the summary", blocks=blocks)
    key = await left_open(app, asked(2, command="summarize"), action="command", messages=[ts])
    await app.router.recovery.sweep()
    await fake_slack.wait_for(lambda: CUT.split("_")[1] in posted.text, timeout=10)
    assert posted.text.startswith("Half of the summary")
    assert [b["type"] for b in posted.blocks] == ["markdown"] and posted.blocks[0]["text"].endswith(CUT)
    assert fake_llm.chat_requests == [] and await state_of(app, key) == "closed"


async def test_a_cut_command_nothing_was_shown_of_is_reported_to_the_asker(app, slack, fake_slack, fake_llm):
    key = await left_open(app, asked(3, command="summarize"), action="command")
    await app.router.recovery.sweep()
    await fake_slack.wait_for(lambda: fake_slack.ephemeral, timeout=10)
    [note] = fake_slack.ephemeral
    assert note["user"] == ASKER and note["text"] == LOST
    assert fake_llm.chat_requests == [] and await state_of(app, key) == "closed"
    assert fake_slack.bot_messages(CHANNEL) == []  # nothing in the channel


async def test_a_message_a_dead_process_held_through_an_outage_is_answered_by_the_next_one(
        app, slack, fake_slack, fake_llm, settings):
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = HeldSpool(folder=app.services.journal.spool.folder, owner=f"{processes.machine()}:{gone.pid}:0000dead")
    dead.add(asked(4), "answer")  # held in memory and on disk, then the process died
    fake_llm.enqueue("Here is your story, at last.")
    await app.router.recovery.sweep()
    await fake_slack.wait_for(lambda: fake_slack.bot_messages(CHANNEL), timeout=15)
    await app.router.drain()
    [answer] = fake_slack.bot_messages(CHANNEL)
    assert answer.text == "Here is your story, at last." and answer.thread_ts == ROOT
    assert not dead.path.exists()
    assert await state_of(app, asked(4).dedupe_key) == "delivered"
    await app.router.recovery.sweep()  # adopted once: nothing more
    assert len(fake_slack.bot_messages(CHANNEL)) == 1 and len(fake_llm.chat_requests) == 1
