"""PostgreSQL dies under a running bot (its own embedded server, killed as in a crash):
the bot tells the asker plainly that the answer is delayed, /healthz says 503, the
database comes back (the bot restarts its embedded server, with backoff) and the held
answer is delivered, once."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

import aiohttp
from sqlalchemy import text

from bot.app import App
from bot.core.http import HttpServer
from bot.core.outage import DELAYED
from bot.core.reports import usage_report
from tests.harness import Harness, RecordingConversation


def postmaster_pid(pgdata) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def crashed(settings, fake_llm, tmp_path):
    """A bot on its own embedded server that has answered once (its usage row written),
    whose postmaster is then killed as in a crash; yields (app, harness, HTTP client,
    data folder, the dead pid)."""
    own = settings.model_copy(update=dict(database_url=None, data_dir=tmp_path / "own"))
    async with await App.open(own) as app:
        bot = Harness(app)
        http = HttpServer(app.services, host="127.0.0.1", port=0)
        await http.start()
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{http.bound_port}") as client:
                fake_llm.enqueue("Before the crash.")
                assert await bot.send("@aibot hello") == ["Before the crash."]
                assert await app.services.ledger.flush(timeout=10)  # nothing queued meets the crash
                pgdata = tmp_path / "own" / "pg"
                pid = postmaster_pid(pgdata)
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown: what a crash looks like to clients
                await wait_for(lambda: not alive(pid))
                yield app, bot, client, pgdata, pid
        finally:
            await http.stop()
            await app.router.outage.close()


async def test_a_database_crash_delays_answers_and_they_arrive_when_it_is_back(settings, fake_llm, tmp_path):
    async with crashed(settings, fake_llm, tmp_path) as (app, bot, client, pgdata, pid):
        async with client.get("/healthz") as r:
            assert r.status == 503 and (await r.json())["database"] == "unreachable"

        # a workspace the bot has not seen needs the database to decide: held, told, answered later
        fake_llm.enqueue("After the outage.")
        conv = RecordingConversation()
        assert await bot.send("@aibot are you there?", conv=conv, tenant="T2") == [DELAYED]
        await wait_for(lambda: len(conv.texts) == 2)  # the bot restarted its server and answered
        assert conv.texts == [DELAYED, "After the outage."]
        async with client.get("/healthz") as r:
            assert r.status == 200
        assert postmaster_pid(pgdata) not in (None, pid)
        await asyncio.sleep(1)
        assert len(conv.texts) == 2 and len(fake_llm.chat_requests) == 2  # answered once
        assert await app.services.ledger.flush(timeout=30)
        assert sum(s.requests for s in await usage_report(app.services.db, ledger=app.services.ledger)) == 2


async def test_a_known_workspace_is_answered_during_the_outage_and_its_usage_row_waits(settings, fake_llm, tmp_path):
    """Nothing on a known workspace's answer path needs the database (its settings and
    knowledge-base presence are remembered, usage rows queue): it is answered at once; the
    usage row's failed write starts the recovery, and the row is written when it is back."""
    async with crashed(settings, fake_llm, tmp_path) as (app, bot, client, pgdata, pid):
        fake_llm.enqueue("Still here.")
        assert await bot.send("@aibot still there?") == ["Still here."]

        async def healthy() -> bool:
            async with client.get("/healthz") as r:
                return r.status == 200

        deadline = time.monotonic() + 60
        while not await healthy():  # nobody waited on a held message: the ledger's writer revived it
            assert time.monotonic() < deadline, "the database was never brought back"
            await asyncio.sleep(0.2)
        assert postmaster_pid(pgdata) not in (None, pid)
        assert await app.services.ledger.flush(timeout=30)  # the queued usage row is written
        assert sum(s.requests for s in await usage_report(app.services.db, ledger=app.services.ledger)) == 2


async def test_an_answer_held_through_the_outage_is_on_disk_until_the_journal_has_it(settings, fake_llm, tmp_path):
    """A held answer of a journaled platform is kept in a spool file (a process that dies
    during the outage leaves it to the next one); once the database is back it is answered,
    its journal row written, and the file goes."""
    async with crashed(settings, fake_llm, tmp_path) as (app, bot, client, pgdata, pid):
        journal = app.services.journal
        journal.platforms.add("test")  # as if its adapter could resume answers
        fake_llm.enqueue("After the outage.")
        conv = RecordingConversation()
        assert await bot.send("@aibot are you there?", conv=conv, tenant="T2", dedupe_key="test:ev:held") == [DELAYED]
        [(held, action)] = journal.spool.read(journal.spool.path)
        assert held.text == "are you there?" and held.dedupe_key == "test:ev:held" and action == "answer"
        await wait_for(lambda: len(conv.texts) == 2)
        assert conv.texts[1] == "After the outage."
        await wait_for(lambda: not journal.spool.path.exists(), timeout=10)  # the queue drained: the file goes
        assert await journal.flush(timeout=10)
        async with app.services.db.session() as s:
            state = (await s.execute(text("SELECT state FROM answer_journal WHERE key = 'test:ev:held'"))).scalar()
        assert state == "delivered"
