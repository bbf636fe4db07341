"""Answer controls across processes: with `aibot run --workers N`, or replicas behind one
load balancer, a press of Stop or Regenerate (or a 🛑 reaction) may reach any process, not
the one writing the answer.

Each streamed answer gets one small row in `answer_controls` once its first message is
shown (where it is, who asked, that message's id, the question), marked finished when it
ends. Then, from any process:

- **Regenerate** reads the question from the row and answers it again there;
- **Stop** sets the row's `stop_requested` and sends `NOTIFY aibot_answer_stop, '<id>'`
  in the same transaction; the process writing the answer LISTENs on that channel
  (`StopListener`, one connection per process, opened with its first answer) and stops
  it. A notification sent while the listener was reconnecting is not lost: after every
  (re)connect, and every `POLL` seconds, the listener also reads the flags of the answers
  it is writing.

A row still "running" after `STALE` belongs to a process that died (kill -9): it counts
as finished. Rows are kept AIBOT_ANSWER_RETENTION_DAYS (purged by the listener, hourly)
and go with their tenant's data (export, deletion).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from bot.core.coalesce import Coalescer
from bot.core.messages import Attachment, Incoming

if TYPE_CHECKING:
    from bot.core.answers import Answer

log = logging.getLogger(__name__)

CHANNEL = "aibot_answer_stop"  # the NOTIFY channel; the payload is the answer id
STALE = timedelta(minutes=15)  # a row running longer belongs to a process that died
POLL = 30.0  # seconds between the listener's checks of its answers' flags (and keep-alive)
PURGE_EVERY = 3600.0
COALESCE = 0.1  # seconds a row's write waits for others' (a Stop pressed elsewhere sooner finds no row yet)
RECONNECT = (0.5, 10.0)  # the listener's backoff after losing its connection: first, max
_KEPT = ("platform", "tenant", "channel", "user", "text", "id", "thread", "user_name", "mentioned", "is_dm",
         "in_bot_thread", "command", "is_admin", "timezone")


# ----------------------------------------------------------------------------- questions


def question_json(msg: Incoming) -> dict:
    """What Regenerate needs of a question, as JSON (never `raw`, the platform object)."""
    data: dict[str, Any] = {k: getattr(msg, k) for k in _KEPT}
    data["ts"] = msg.ts.isoformat()
    data["attachments"] = [_attachment_json(a) for a in msg.attachments]
    if msg.options is not None:
        data["options"] = {k: _option_json(v) for k, v in msg.options.items()}
    return data


def question_from(data: dict) -> Incoming:
    kwargs = {k: data[k] for k in _KEPT if k in data}
    kwargs["ts"] = datetime.fromisoformat(data["ts"]) if data.get("ts") else datetime.now(timezone.utc)
    kwargs["attachments"] = tuple(Attachment(**a) for a in data.get("attachments") or ())
    if data.get("options") is not None:
        kwargs["options"] = {k: _option_from(v) for k, v in data["options"].items()}
    return Incoming(**kwargs)


def _attachment_json(a: Attachment) -> dict:
    return {f.name: getattr(a, f.name) for f in fields(Attachment)}


def _option_json(value: Any) -> Any:
    if isinstance(value, Attachment):
        return {"__attachment__": _attachment_json(value)}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _option_from(value: Any) -> Any:
    if isinstance(value, dict) and "__attachment__" in value:
        return Attachment(**value["__attachment__"])
    return value


# ----------------------------------------------------------------------------- the rows


@dataclass(frozen=True)
class Remembered:
    """An answer as any process sees it in the database."""

    id: str
    platform: str
    tenant: str
    channel: str
    message: str | None
    asker: str
    question: Incoming
    running: bool  # still being written (a row left running by a dead process is not)


_COLUMNS = "id, platform, workspace, channel, message, asker, question, running, created_at"


class AnswerStore:
    def __init__(self, db, *, retention: timedelta = timedelta(days=7), coalesce: float = COALESCE) -> None:
        self.db = db
        self.retention = retention
        # rows are written behind the answers: what queues up meanwhile goes in one statement
        self._remembering: Coalescer[dict, None] = Coalescer(self._insert, max_batch=500, delay=coalesce)
        self._finishing: Coalescer[str, None] = Coalescer(self._finish, max_batch=500, delay=coalesce)

    async def remember(self, answer: "Answer", message: str | None) -> None:
        msg = answer.msg
        await self._remembering.submit({
            "id": answer.id, "p": msg.platform[:32], "w": msg.tenant[:200], "c": msg.channel[:200],
            "m": (message or None) and message[:200], "u": msg.user[:200], "q": json.dumps(question_json(msg))})

    async def finished(self, answer_id: str) -> None:
        await self._finishing.submit(answer_id)

    async def _insert(self, rows: list[dict]) -> list[None]:
        async with self.db.session.autocommit() as s:  # one statement for the batch
            await s.execute(text(
                "INSERT INTO answer_controls (id, platform, workspace, channel, message, asker, question) "
                "SELECT id, p, w, c, m, u, CAST(q AS jsonb) FROM unnest(CAST(:ids AS varchar[]), "
                "CAST(:ps AS varchar[]), CAST(:ws AS varchar[]), CAST(:cs AS varchar[]), CAST(:ms AS varchar[]), "
                "CAST(:us AS varchar[]), CAST(:qs AS text[])) AS r(id, p, w, c, m, u, q) ON CONFLICT (id) DO NOTHING"),
                {f"{k}s": [r[k] for r in rows] for k in ("id", "p", "w", "c", "m", "u", "q")})
        return [None] * len(rows)

    async def _finish(self, ids: list[str]) -> list[None]:
        async with self.db.session.autocommit() as s:
            await s.execute(text("UPDATE answer_controls SET running = false, finished_at = now() "
                                 "WHERE id = ANY(CAST(:ids AS varchar[])) AND running"), {"ids": ids})
        return [None] * len(ids)

    async def find(self, answer_id: str) -> Remembered | None:
        async with self.db.session() as s:
            row = (await s.execute(text(f"SELECT {_COLUMNS} FROM answer_controls WHERE id = :id"),
                                   {"id": answer_id[:64]})).first()
        return _remembered(row) if row else None

    async def by_message(self, platform: str, channel: str, message: str) -> Remembered | None:
        """The answer whose first message is `message` (a reaction names a message)."""
        async with self.db.session() as s:
            row = (await s.execute(text(
                f"SELECT {_COLUMNS} FROM answer_controls WHERE platform = :p AND channel = :c AND message = :m "
                "ORDER BY created_at DESC LIMIT 1"), {"p": platform, "c": channel, "m": message})).first()
        return _remembered(row) if row else None

    async def request_stop(self, answer_id: str) -> bool:
        """Flag the answer and notify the process writing it; False if it is not running."""
        async with self.db.session.begin() as s:
            row = (await s.execute(text(
                "UPDATE answer_controls SET stop_requested = now() WHERE id = :id AND running "
                "AND created_at > now() - make_interval(secs => :stale) RETURNING id"),
                {"id": answer_id, "stale": STALE.total_seconds()})).first()
            if row is None:
                return False
            await s.execute(text("SELECT pg_notify(:ch, :id)"), {"ch": CHANNEL, "id": answer_id})
        return True

    async def wait_finished(self, answer_id: str, *, timeout: float) -> bool:
        """True once the answer is marked finished (its process heard the Stop)."""
        deadline = time.monotonic() + timeout
        while True:
            found = await self.find(answer_id)
            if found is None or not found.running:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.2)

    async def stop_requested(self, ids: Iterable[str]) -> list[str]:
        ids = list(ids)
        if not ids:
            return []
        async with self.db.session() as s:
            rows = await s.execute(text("SELECT id FROM answer_controls WHERE id = ANY(:ids) AND stop_requested IS NOT NULL"),
                                   {"ids": ids})
            return [r[0] for r in rows]

    async def purge(self) -> int:
        async with self.db.session.begin() as s:
            res = await s.execute(text("DELETE FROM answer_controls WHERE created_at < now() - make_interval(secs => :keep)"),
                                  {"keep": self.retention.total_seconds()})
        return res.rowcount or 0

    # --- a tenant's data ----------------------------------------------------------------

    async def export_tenant(self, platform: str, tenant: str) -> list[dict]:
        async with self.db.session() as s:
            rows = (await s.execute(text(
                "SELECT id, created_at, channel, message, asker, question, running FROM answer_controls "
                "WHERE platform = :p AND workspace = :t ORDER BY created_at"), {"p": platform, "t": tenant})).mappings().all()
        return [{**r, "created_at": r["created_at"].isoformat()} for r in rows]

    async def delete_tenant(self, platform: str, tenant: str) -> dict[str, int]:
        async with self.db.session.begin() as s:
            res = await s.execute(text("DELETE FROM answer_controls WHERE platform = :p AND workspace = :t"),
                                  {"p": platform, "t": tenant})
        return {"answer_controls": res.rowcount or 0}

    def listener(self, *, stop: Callable[[str], None], running: Callable[[], list[str]]) -> "StopListener":
        return StopListener(self, stop=stop, running=running)


def _remembered(row) -> Remembered:
    id_, platform, tenant, channel, message, asker, question, running, created = row
    data = question if isinstance(question, dict) else json.loads(question)
    alive = bool(running) and created > datetime.now(timezone.utc) - STALE
    return Remembered(id_, platform, tenant, channel, message, asker, question_from(data), alive)


# ----------------------------------------------------------------------------- listening


class StopListener:
    """This process's LISTEN on `CHANNEL`: a Stop pressed in another process reaches the
    answer here. One connection of its own (not the pool's), reconnected with backoff."""

    def __init__(self, store: AnswerStore, *, stop: Callable[[str], None], running: Callable[[], list[str]]) -> None:
        self.store = store
        self.stop = stop  # stop the answer with this id, if it runs here
        self.running = running  # ids of the answers running here
        self.connected = asyncio.Event()
        self.pid: int | None = None  # the listening connection's server process
        self._task: asyncio.Task | None = None
        self._purged = 0.0

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="answer-stop-listener")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    async def _run(self) -> None:
        delay = RECONNECT[0]
        while True:
            try:
                await self._listen()
                delay = RECONNECT[0]
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("listening for Stop presses from other processes failed (%s: %s); retrying in %.1f s",
                            type(exc).__name__, exc, delay)
            self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT[1])

    async def _listen(self) -> None:
        conn = await self.store.db.engine.connect()
        try:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection  # asyncpg's
            raw.detach()  # a connection of its own for as long as it listens: the pool opens another
            lost = asyncio.Event()
            driver.add_termination_listener(lambda _c: lost.set())
            await driver.add_listener(CHANNEL, lambda _c, _pid, _ch, payload: self.stop(payload))
            self.pid = driver.get_server_pid()
            self.connected.set()
            while not lost.is_set():
                await driver.execute("SELECT 1")  # keep-alive: a dead server shows here at the latest
                await self._check()  # flags set while nobody listened
                try:
                    await asyncio.wait_for(lost.wait(), POLL)
                except asyncio.TimeoutError:
                    pass
        finally:
            self.connected.clear()
            try:
                await conn.close()
            except Exception:
                pass

    async def _check(self) -> None:
        for answer_id in await self.store.stop_requested(self.running()):
            self.stop(answer_id)
        if time.monotonic() - self._purged > PURGE_EVERY:
            self._purged = time.monotonic()
            gone = await self.store.purge()
            if gone:
                log.info("purged %d answers older than the retention period", gone)
