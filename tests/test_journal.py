"""The answer journal in PostgreSQL: an answer's row moves received → answering (its
platform message recorded) → delivered; a process's live lease is never taken; a dead
process's rows go to exactly one of the processes claiming them at once."""
from __future__ import annotations

import asyncio
import subprocess

from sqlalchemy import text

from bot.core import incoming_json, processes
from bot.core.dedupe import Dedupe
from bot.core.journal import Journal, process_id
from bot.core.messages import Attachment, Incoming
from tests.fakes.openai_server import Script
from tests.slack_support import *  # noqa: F401,F403
from tests.slack_support import load


def mention(n: int) -> Incoming:
    return Incoming(platform="slack", tenant="T1", channel="C1", user="U1", text=f"question {n}", id=f"{n}.0",
                    thread=f"{n}.0", mentioned=True, dedupe_key=f"slack:event:Ev{n:04d}",
                    attachments=(Attachment(name="a.txt", ref="F1", size=3),), options={"file": Attachment("b", "F2")})


async def journal_rows(db) -> list:
    async with db.session() as s:
        return (await s.execute(text("SELECT key, state, messages, native, owner, attempts FROM answer_journal "
                                     "ORDER BY key"))).all()


async def accept(journal: Journal, n: int, *, first: int = 0) -> None:
    """As the router does: the event's key and its journal row, in one statement."""
    dedupe = Dedupe(journal.db, journal=journal)
    for i in range(first, first + n):
        msg = mention(i)
        assert await dedupe.first_time(msg.dedupe_key, journal=journal.row(msg, "answer"))


def test_a_message_survives_its_trip_through_json():
    msg = mention(7)
    back = incoming_json.loads(incoming_json.dumps(msg))
    assert back == msg and back.options == msg.options and back.attachments == msg.attachments


async def test_a_streamed_slack_answer_is_journaled_from_received_to_delivered(app, slack, fake_llm):
    fake_llm.enqueue(Script(text=" ".join(f"w{i}" for i in range(30)), tokens_per_second=20))
    await slack.event(load("app_mention"), settle=False)
    db = app.services.db
    for _ in range(200):  # while it streams: answering, with the stream's ts
        rows = await journal_rows(db)
        if rows and rows[0].state == "answering":
            break
        await asyncio.sleep(0.05)
    [row] = rows
    assert row.state == "answering" and row.native and row.owner == app.services.journal.owner
    [stream] = slack.fake.bot_messages("C123ABC456")
    assert row.messages == [stream.ts] and stream.streaming
    await slack.settle()
    assert await app.services.journal.flush(timeout=5)
    [row] = await journal_rows(db)
    assert row.state == "delivered" and row.messages == [stream.ts]


async def test_a_live_lease_is_not_taken_and_an_expired_one_goes_to_exactly_one_process(app):
    db = app.services.db
    alive = Journal(db=db, lease=2, owner="host:1:alive")
    alive.platforms.add("slack")
    await accept(alive, 40)
    alive.start()  # its heartbeat renews the leases every 2/3 s
    try:
        others = [Journal(db=db, lease=30, owner=f"host:{i}:other") for i in (2, 3, 4)]
        for _ in range(4):  # 4 s: twice the lease, kept alive by the heartbeat
            assert [await j.claim({"slack"}) for j in others] == [[], [], []]
            await asyncio.sleep(1)
    finally:
        await alive.close()  # the process dies: no more heartbeats
    await asyncio.sleep(2.2)
    claimed = await asyncio.gather(*(j.claim({"slack"}) for j in others))
    keys = [c.key for batch in claimed for c in batch]
    assert sorted(keys) == sorted(mention(i).dedupe_key for i in range(40))  # all taken, none twice
    assert all(c.attempts == 1 and c.msg.text.startswith("question") for batch in claimed for c in batch)
    assert [await j.claim({"slack"}) for j in others] == [[], [], []]  # and now live again
    owners = {r.owner for r in await journal_rows(db)}
    assert owners <= {j.owner for j in others}


async def test_only_the_platforms_a_process_serves_are_claimed(app):
    db = app.services.db
    dead = Journal(db=db, lease=0.5, owner="host:1:dead")
    await accept(dead, 3)
    await asyncio.sleep(0.7)
    discord_only = Journal(db=db, owner="host:2:discord")
    assert await discord_only.claim({"discord"}) == []
    assert len(await Journal(db=db, owner="host:3:slack").claim({"slack"})) == 3


async def test_rows_of_a_dead_process_on_this_machine_are_taken_at_once_a_live_ones_never(app):
    db = app.services.db
    machine = processes.machine()
    sleeper = subprocess.Popen(["sleep", "60"])
    gone = subprocess.Popen(["true"])
    gone.wait()
    try:
        for pid, first in ((sleeper.pid, 0), (gone.pid, 2)):  # leases far from over
            await accept(Journal(db=db, lease=300, owner=f"{machine}:{pid}:0000abcd"), 2, first=first)
        restarted = Journal(db=db, owner=process_id())
        claimed = await restarted.claim({"slack"})
        assert sorted(c.key for c in claimed) == [mention(2).dedupe_key, mention(3).dedupe_key]  # the dead one's
        assert {r.owner for r in await journal_rows(db)} == {f"{machine}:{sleeper.pid}:0000abcd", restarted.owner}
    finally:
        sleeper.kill()
        sleeper.wait()
