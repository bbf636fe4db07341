"""The answer journal: what became of every accepted answer, in PostgreSQL, so that one
cut off by a crash (kill -9, OOM, a lost host) is completed or closed by the next process.

An answer moves through received → answering → delivered (or closed):

- `received` is written with the dedupe record of its event, in the same statement
  (`Dedupe` asks `with_dedupe`), so a message is marked as seen only together with its
  journal row and the hot path gains no round trip;
- `answering` carries the platform message ids (a native Slack stream's ts) as the
  renderer creates them, and `delivered` / `closed` end it; both go through one writer
  that coalesces what queued up meanwhile into one statement, behind the answer;
- each row has an owner (this process) and a lease (`lease_until`), which a heartbeat
  renews every lease/3 while the process lives; `claim` hands rows whose lease ran out to
  exactly one live process (`FOR UPDATE SKIP LOCKED`), for `bot.core.recovery`. Rows of
  a process that ran on this machine and is gone (its pid no longer exists in the same
  PID namespace) are claimable at once: a restart after kill -9 need not wait the lease.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bot.core import incoming_json, processes
from bot.core.journal_sql import (CLAIM, DEDUPE_AND_RECEIVED, ENSURE, HEARTBEAT, NEIGHBOURS, NEXT_EXPIRY,
                                  PURGE, UPDATE)
from bot.core.messages import Incoming
from bot.core.priority import shared_task
from bot.core.spool import HeldSpool

log = logging.getLogger(__name__)

RECEIVED, ANSWERING, DELIVERED, CLOSED = "received", "answering", "delivered", "closed"
ACTIONS = ("answer", "command", "ingest")  # routes whose replies are journaled
RETRY_MAX = 10.0
COALESCE = 0.1  # seconds the writer waits for more changes: a short answer's ids and end go in one write

def process_id() -> str:
    """This process, as the journal's owner column names it: its machine (host and PID
    namespace), its pid, and a random part (a later process may get the same pid)."""
    return f"{processes.machine() or socket.gethostname()[:120]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def dead_neighbour(owner: str, machine: str) -> bool:
    """Whether `owner` ran on this machine (same PID namespace) and its process is gone:
    its rows need not wait for their lease to run out."""
    if not machine or not owner.startswith(machine + ":"):
        return False
    try:
        pid = int(owner[len(machine) + 1:].split(":", 1)[0])
    except ValueError:
        return False
    return not processes.alive(pid)


@dataclass(frozen=True)
class Claimed:
    """A row this process took over: an answer whose owner's lease ran out."""

    key: str
    platform: str
    action: str
    msg: Incoming
    state: str
    messages: list[str]
    native: bool
    attempts: int  # claims so far, this one included
    age: float  # seconds since the message was received


@dataclass
class Entry:
    """One answer's journal row, as the router and renderer move it along."""

    journal: "Journal"
    key: str
    messages: list[str] = field(default_factory=list)
    native: bool = False
    ended: bool = False

    def message(self, message_id: str, *, native: bool = False) -> None:
        """The renderer created a platform message (or opened a native stream) for this answer."""
        if not message_id or self.ended:
            return
        self.messages.append(message_id)
        self.native = native
        self.journal.queue(self.key, ANSWERING, self.messages, native)

    def end(self, state: str = DELIVERED) -> None:
        if not self.ended:
            self.ended = True
            self.journal.queue(self.key, state, self.messages, self.native)


class Journal:
    def __init__(self, *, db, lease: float = 15.0, owner: str | None = None, spool_dir: Path | None = None,
                 coalesce: float = COALESCE) -> None:
        self.db = db
        self.lease = float(lease)
        self.coalesce = coalesce
        self.owner = owner or process_id()
        # answers held through a database outage, on disk too (None: in memory only)
        self.spool = HeldSpool(folder=spool_dir, owner=self.owner) if spool_dir is not None else None
        self.platforms: set[str] = set()  # platforms whose answers are journaled here (they can be resumed)
        self._pending: dict[str, tuple[str, str, bool]] = {}
        self._writer: asyncio.Task | None = None
        self._heart: asyncio.Task | None = None

    # --- the hot path -------------------------------------------------------------------

    def wants(self, msg: Incoming, action: str) -> bool:
        """Whether the reply to `msg` is journaled: a platform this process can resume, a
        route with a reply, someone waiting for it, and a delivery id to key it by."""
        return (msg.platform in self.platforms and action in ACTIONS and not msg.unattended
                and bool(msg.dedupe_key))

    def row(self, msg: Incoming, action: str) -> dict:
        """The `received` row of `msg`, for `with_dedupe`."""
        return {"key": (msg.dedupe_key or "")[:300], "platform": msg.platform[:32], "tenant": msg.tenant[:200],
                "channel": msg.channel[:200], "action": action, "incoming": incoming_json.dumps(msg)}

    def with_dedupe(self, keys: list[str], rows: list[dict]):
        """The statement (and its parameters) that records `keys` as seen and writes the
        journal rows of the fresh ones among them; it returns the fresh keys."""
        params = {"keys": keys, "owner": self.owner, "lease": self.lease}
        for name in ("key", "platform", "tenant", "channel", "action", "incoming"):
            params[f"j{name}s" if name != "incoming" else "jincoming"] = [r[name] for r in rows]
        return DEDUPE_AND_RECEIVED, params

    async def adopt(self, msg: Incoming, action: str) -> bool:
        """Journal a message a dead process held through an outage (from its spool file),
        owned by this process; False when its event was handled already."""
        stmt, params = self.with_dedupe([(msg.dedupe_key or "")[:300]], [self.row(msg, action)])
        async with self.db.session.begin() as s:
            return bool((await s.execute(stmt, params)).scalars().all())

    def dead_owner(self, owner: str) -> bool:
        return dead_neighbour(owner, processes.machine())

    def entry(self, msg: Incoming) -> Entry:
        return Entry(self, (msg.dedupe_key or "")[:300])

    async def ensure(self, msg: Incoming, action: str) -> bool:
        """Write (or reset) the `received` row of a message handled again: one held through a
        database outage (written now that the database is back) or one recovery took over.
        False when another process owns it now (it answers; this one must not)."""
        async with self.db.session.begin() as s:
            found = await s.execute(ENSURE, {**self.row(msg, action), "owner": self.owner, "lease": self.lease})
            return found.first() is not None

    def queue(self, key: str, state: str, messages: list[str], native: bool) -> None:
        """Record a state change behind the answer (the writer coalesces what queues up)."""
        self._pending[key] = (state, json.dumps(messages), native)
        if self._writer is None or self._writer.done():
            self._writer = shared_task(self._write(), name="answer-journal-writer")

    async def _write(self) -> None:
        delay = 0.2
        while self._pending:
            await asyncio.sleep(self.coalesce)  # what else changes meanwhile goes in the same statement
            batch, self._pending = self._pending, {}
            try:
                async with self.db.session.autocommit() as s:  # one statement, committed whole
                    await s.execute(UPDATE, {
                        "keys": list(batch), "states": [v[0] for v in batch.values()],
                        "messages": [v[1] for v in batch.values()], "natives": [v[2] for v in batch.values()],
                        "owner": self.owner})
                delay = 0.2
            except Exception as exc:  # kept and retried: a lost `delivered` would be answered twice
                log.warning("answer journal write failed (%s); retrying in %.1f s", type(exc).__name__, delay)
                for key, value in batch.items():
                    self._pending.setdefault(key, value)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued change is written; False on timeout."""
        if self._writer is None:
            return True
        try:
            async with asyncio.timeout(timeout):
                while self._writer is not None and not self._writer.done():
                    await asyncio.shield(self._writer)
            return True
        except TimeoutError:
            return False

    # --- leases -------------------------------------------------------------------------

    def start(self) -> None:
        """Renew this process's leases every lease/3 from now on."""
        if self._heart is None or self._heart.done():
            self._heart = asyncio.create_task(self._beat(), name="answer-journal-heartbeat")

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                async with self.db.session.begin() as s:
                    await s.execute(HEARTBEAT, {"owner": self.owner, "lease": self.lease})
            except Exception as exc:
                log.warning("answer journal heartbeat failed (%s)", type(exc).__name__)

    async def claim(self, platforms, *, limit: int = 50) -> list[Claimed]:
        """Take over open answers of `platforms` whose lease ran out (a dead owner's);
        each row goes to exactly one claiming process."""
        if not platforms:
            return []
        async with self.db.session.begin() as s:
            dead = await self._dead_neighbours(s)
            rows = (await s.execute(CLAIM, {"owner": self.owner, "lease": self.lease, "dead": dead,
                                             "platforms": sorted(platforms), "limit": limit})).all()
        out = []
        for r in rows:
            try:
                msg = incoming_json.loads(r.incoming)
            except Exception:
                log.exception("answer journal row %s cannot be read; closing it", r.key)
                self.queue(r.key, CLOSED, list(r.messages or []), bool(r.native))
                continue
            out.append(Claimed(key=r.key, platform=r.platform, action=r.action, msg=msg, state=r.state,
                               messages=list(r.messages or []), native=bool(r.native), attempts=int(r.attempts),
                               age=float(r.age)))
        return out

    async def _dead_neighbours(self, s) -> list[str]:
        """Owners with live leases whose process ran on this machine and is gone (a
        restart after kill -9 on the same host: taken over at once, not after the lease)."""
        machine = processes.machine()
        if not machine:
            return []
        like = machine.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ":%"
        owners = (await s.execute(NEIGHBOURS, {"machine": like, "owner": self.owner})).scalars().all()
        return [o for o in owners if dead_neighbour(o, machine)]

    async def next_expiry(self, platforms) -> float | None:
        """Seconds until the next open lease of `platforms` runs out (None: no open row)."""
        if not platforms:
            return None
        async with self.db.session() as s:
            found = (await s.execute(NEXT_EXPIRY, {"platforms": sorted(platforms)})).scalar()
        return None if found is None else float(found)

    async def purge(self, *, keep: float = 2 * 86_400) -> int:
        """Forget finished answers older than `keep` seconds."""
        async with self.db.session.begin() as s:
            res = await s.execute(PURGE, {"keep": keep})
        return res.rowcount or 0

    async def close(self) -> None:
        if self._heart is not None:
            self._heart.cancel()
            await asyncio.gather(self._heart, return_exceptions=True)
            self._heart = None
        if not await self.flush(timeout=5):
            log.warning("answer journal: %d change(s) not written at shutdown", len(self._pending))
            if self._writer is not None:
                self._writer.cancel()
