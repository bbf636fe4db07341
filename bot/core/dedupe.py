"""Duplicate-delivery guard: platforms retry (Slack resends an event it thinks was not
acknowledged, a gateway replays after a resume), and a message must be answered once.

Keys are remembered in memory for the process, and in PostgreSQL so that replicas sharing
the database agree too. If the database is unreachable the memory check still holds.
A key may come with its answer journal row (`bot.core.journal`): the row is written in the
same statement as the key, so an event is marked as seen only together with it.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from datetime import timedelta

from sqlalchemy import delete, func
from sqlalchemy.dialects.postgresql import insert

from bot.core.models import ProcessedEvent
from bot.core.priority import shared_task

log = logging.getLogger(__name__)


class Dedupe:
    """Keys arriving together are checked in one statement: while one INSERT is on its
    way, the keys that come in wait for the next, so a burst costs a few round trips
    and one connection, not one transaction per message."""

    def __init__(self, db=None, *, memory_size: int = 20_000, keep: timedelta = timedelta(days=2),
                 journal=None) -> None:
        self.db = db
        self.journal = journal  # bot.core.journal.Journal: writes its `received` rows with the keys
        self.keep = keep
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._size = memory_size
        self._waiting: dict[str, tuple[asyncio.Future[bool], dict | None]] = {}
        self._flusher: asyncio.Task | None = None

    async def first_time(self, key: str, *, journal: dict | None = None) -> bool:
        """True the first time `key` is seen (here or by another replica), else False.
        `journal`: the answer journal row to write with the key when it is fresh."""
        if key in self._seen:
            return False
        self._seen[key] = time.monotonic()
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        if self.db is None:
            return True
        answer = asyncio.get_running_loop().create_future()
        self._waiting[key[:300]] = (answer, journal)
        if self._flusher is None or self._flusher.done():
            self._flusher = shared_task(self._flush(), name="dedupe-flusher")
        return await asyncio.shield(answer)  # a cancelled caller must not cancel the others' check

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, {}
            rows = [row for _, row in batch.values() if row is not None]
            try:
                async with self.db.session.autocommit() as s:  # one statement, committed whole
                    if rows and self.journal is not None:
                        res = await s.execute(*self.journal.with_dedupe(list(batch), rows))
                    else:
                        res = await s.execute(
                            insert(ProcessedEvent).values([{"key": k} for k in batch])
                            .on_conflict_do_nothing().returning(ProcessedEvent.key)
                        )
                    fresh = set(res.scalars())
            except Exception:
                log.warning("dedupe table unavailable; relying on this process's memory", exc_info=True)
                fresh = set(batch)
            for key, (answer, _) in batch.items():
                if not answer.done():
                    answer.set_result(key in fresh)

    async def purge(self) -> int:
        if self.db is None:
            return 0
        async with self.db.session.begin() as s:
            res = await s.execute(delete(ProcessedEvent).where(ProcessedEvent.created_at < func.now() - self.keep))
        return res.rowcount or 0
