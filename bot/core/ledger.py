"""The usage ledger: one row per model call (reports on it: bot.core.reports)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import insert
from sqlalchemy.exc import DataError, IntegrityError

from bot.core.answers import CURRENT
from bot.core.messages import CallInfo
from bot.core.models import Usage
from bot.core.outage import is_db_outage
from bot.core.priority import shared_task

log = logging.getLogger(__name__)


@dataclass
class UsageRecord:
    call: CallInfo
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    cost_usd: Decimal = Decimal(0)
    cache_hit: bool = False
    cached_tokens: int = 0  # prompt tokens the provider served from its prompt cache
    saved_usd: Decimal = Decimal(0)  # a cache hit: what the model call would have cost
    outcome: str = "ok"
    streamed: bool = False
    extra: dict | None = None

    def __post_init__(self) -> None:
        answer = CURRENT.get()  # read where the call was made: the answer it is part of
        if answer and not (self.extra or {}).get("answer"):
            self.extra = {**(self.extra or {}), "answer": answer}


class Ledger:
    """Usage rows are written behind the answer: `record` puts the row on a bounded queue
    and returns; one writer inserts what has queued up in one statement. A database
    hiccup holds rows in the queue (the writer retries with backoff, never drops them);
    a full queue makes `record` wait (backpressure) instead of losing a row. `flush`
    waits until every row so far is written; `close` flushes (bounded) at shutdown."""

    def __init__(self, db, *, queue_size: int = 10_000, batch: int = 500, retry_max: float = 10.0,
                 load=None) -> None:
        self.db = db
        self.batch = batch
        self.retry_max = retry_max
        self.load = load  # bot.core.load.Load, for the overload counters (optional)
        self.on_unreachable = None  # called when a write finds the database gone (the router's outage recovery)
        self._queue: asyncio.Queue[dict] = asyncio.Queue(maxsize=queue_size)
        self._writer: asyncio.Task | None = None
        self._in_hand = 0  # rows taken off the queue, being written
        self.written = 0

    @property
    def backlog(self) -> int:
        """Rows accepted but not yet written."""
        return self._queue.qsize() + self._in_hand

    async def record(self, rec: UsageRecord) -> None:
        """Queue one row; never raises (a ledger problem must not break a reply)."""
        row = {
            "pattern": rec.call.pattern,
            "model": rec.model[:200],
            "prompt_tokens": int(rec.prompt_tokens),
            "completion_tokens": int(rec.completion_tokens),
            "latency_ms": round(rec.latency_ms, 3),
            "ttft_ms": None if rec.ttft_ms is None else round(rec.ttft_ms, 3),
            "cost_usd": rec.cost_usd,
            "cache_hit": rec.cache_hit,
            "cached_tokens": int(rec.cached_tokens),
            "saved_usd": rec.saved_usd,
            "outcome": rec.outcome,
            "streamed": rec.streamed,
            "platform": rec.call.platform[:32],
            "workspace": rec.call.tenant[:200],
            "channel": rec.call.channel[:200],
            "user_id": rec.call.user[:200],
            "extra": rec.extra,
        }
        if self._queue.full():
            log.warning("usage ledger queue full (%d rows): waiting for the database", self._queue.qsize())
            if self.load is not None:
                self.load.count("ledger_waits")
        await self._queue.put(row)
        if self._writer is None or self._writer.done():
            self._writer = shared_task(self._write_loop(), name="usage-ledger-writer")

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row recorded so far is written; False on timeout."""
        if self._queue.empty() and not self._in_hand:
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._queue.join()
            return True
        except TimeoutError:
            return False

    async def close(self, timeout: float = 30.0) -> None:
        """Write what is queued (for at most `timeout` s), then stop the writer."""
        if not await self.flush(timeout):
            log.error("%d usage ledger rows could not be written before shutdown (database unreachable)",
                      self.backlog)
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None

    async def _write_loop(self) -> None:
        while True:
            rows = [await self._queue.get()]
            while len(rows) < self.batch and not self._queue.empty():
                rows.append(self._queue.get_nowait())
            self._in_hand = len(rows)
            await self._insert(rows)
            self._in_hand = 0
            for _ in rows:
                self._queue.task_done()

    async def _insert(self, rows: list[dict]) -> None:
        """One INSERT for the batch, retried with backoff until the database takes it."""
        delay = 0.2
        while True:
            try:
                # one statement (asyncpg's executemany is atomic): no BEGIN/COMMIT round trips
                async with self.db.session.autocommit() as conn:
                    await conn.execute(insert(Usage), rows)
                self.written += len(rows)
                return
            except (DataError, IntegrityError):
                if len(rows) == 1:  # this row can never be written: say so loudly
                    log.exception("usage ledger row refused by the database, not retried: %r", rows[0])
                    return
                for row in rows:  # find the one row at fault, keep the others
                    await self._insert([row])
                return
            except Exception as exc:
                log.warning("usage ledger: %d rows not written yet (%s); retrying in %.1f s",
                            len(rows), type(exc).__name__, delay)
                if self.load is not None:
                    self.load.count("ledger_retries")
                if self.on_unreachable is not None and is_db_outage(exc):
                    self.on_unreachable()  # e.g. restart the embedded server; not waited for
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)

