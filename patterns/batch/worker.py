"""The bulk-job worker: bounded concurrency, a requests/tokens-per-minute budget,
retries with backoff, and crash safety.

Each slot claims one pending item with `SELECT ... FOR UPDATE SKIP LOCKED` and keeps the
row locked in that transaction while the model works on it; the result and the item's
new status commit together. A worker that dies mid-item rolls back, so the item is
pending again for the next worker: none is lost, and two workers never take the same
item. A model call that finished right before a crash is not charged twice: calls use the
exact-match answer cache, so the retry is a cache hit (cost 0 in the ledger).
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable

from sqlalchemy import text

from bot.core import tokens
from bot.core.errors import LLMError, LLMNotConfigured
from bot.core.messages import CallInfo
from bot.core.priority import bulk
from patterns.batch.jobs import ANSWER_TOKENS, PATTERN, JobStore
from patterns.batch.settings import BatchSettings
from bot.core.summarizer import summarize

log = logging.getLogger(__name__)

RETRYABLE = {"rate_limited", "unavailable", "timeout", "connection", "cut"}
MAX_BACKOFF = 60.0


class Budget:
    """Requests- and tokens-per-minute limits over a sliding 60 s window (0: no limit)."""

    def __init__(self, *, rpm: int = 0, tpm: int = 0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable] = asyncio.sleep) -> None:
        self.rpm, self.tpm = rpm, tpm
        self.clock, self.sleep = clock, sleep
        self._spent: deque[tuple[float, int]] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self, n_tokens: int) -> None:
        if not self.rpm and not self.tpm:
            return
        async with self._lock:
            while True:
                now = self.clock()
                while self._spent and self._spent[0][0] <= now - 60:
                    self._spent.popleft()
                used = sum(t for _, t in self._spent)
                if (not self.rpm or len(self._spent) < self.rpm) and (
                    not self.tpm or not self._spent or used + n_tokens <= self.tpm
                ):
                    self._spent.append((now, n_tokens))
                    return
                await self.sleep(max(0.01, self._spent[0][0] + 60 - now))


def backoff(attempt: int, retry_after: float | None) -> float:
    """Seconds to wait before attempt `attempt + 1`: Retry-After if given, else exponential with jitter."""
    if retry_after is not None and retry_after >= 0:
        return min(retry_after, MAX_BACKOFF)
    return min(MAX_BACKOFF, 0.5 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)


class BatchWorker:
    def __init__(self, *, services, settings: BatchSettings, concurrency: int | None = None,
                 budget: Budget | None = None) -> None:
        self.services = services
        self.settings = settings
        self.concurrency = concurrency or settings.concurrency
        self.budget = budget or Budget(rpm=settings.rpm, tpm=settings.tpm)
        self.jobs = JobStore(services.db)
        self._gate = asyncio.Semaphore(self.concurrency)  # model calls in flight
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    # --- lifecycle (the bot process) ------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name="batch-worker")

    def wake(self) -> None:
        """A job was submitted: look now instead of at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _forever(self) -> None:
        from patterns.batch.provider import poll_provider_jobs

        settings = self.settings
        poll, last_provider_poll = settings.poll, float("-inf")
        waiting_for_model = False  # said once, not at every poll, until a model is there
        while True:
            try:
                await self.run_until_idle()
                woken = self._wake.is_set()
                if woken or time.monotonic() - last_provider_poll >= settings.provider_poll:
                    last_provider_poll = time.monotonic()
                    with bulk():
                        await poll_provider_jobs(self.services)  # sends new provider jobs, collects finished ones
                waiting_for_model = False
            except LLMNotConfigured:
                (log.debug if waiting_for_model else log.warning)(
                    "bulk jobs are waiting: no language model is configured (set OPENAI_API_KEY or "
                    "OPENAI_BASE_URL and restart; the jobs run then)")
                waiting_for_model = True
            except Exception:
                log.exception("batch worker round failed; retrying")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), poll)
            except TimeoutError:
                pass

    # --- work -----------------------------------------------------------------------

    async def run_until_idle(self, job_id: str | None = None) -> None:
        """Process pending direct items (of one job, or all) until none is left; items
        waiting for a retry are waited for."""
        # more slots than model calls in flight, so claiming and recording one item overlaps
        # the model calls of others; each slot holds a pooled connection while it works
        slots = self.concurrency + max(1, self.concurrency // 4)
        if await self._next_retry_in(job_id) is None:
            return  # nothing pending: one query per poll instead of a claim per slot
        while True:
            with bulk():  # behind questions on the database pool and the model gate
                await asyncio.gather(*(self._slot(job_id) for _ in range(slots)))
            wait = await self._next_retry_in(job_id)
            if wait is None:
                return
            await asyncio.sleep(wait)

    async def _next_retry_in(self, job_id: str | None) -> float | None:
        async with self.services.db.session() as s:
            row = (await s.execute(text(
                "SELECT count(*) AS n, greatest(0, extract(epoch FROM min(i.not_before) - now())) AS wait "
                "FROM batch_items i JOIN batch_jobs j ON j.id = i.job_id "
                "WHERE i.status = 'pending' AND j.mode = 'direct' AND (CAST(:job AS text) IS NULL OR i.job_id = :job)"
            ), {"job": job_id})).first()
        if not row.n:
            return None
        return float(row.wait or 0) + 0.01

    async def _slot(self, job_id: str | None) -> None:
        touched: set[str] = set()
        while True:
            worked_on = await self._one(job_id)
            if worked_on is None:
                break
            if worked_on not in touched:
                touched.add(worked_on)
                async with self.services.db.session.begin() as s:
                    await s.execute(text("UPDATE batch_jobs SET status = 'running' WHERE id = :id AND status = 'queued'"),
                                    {"id": worked_on})
        for job in touched:  # after this slot's last commit (see JobStore.finish_if_complete)
            async with self.services.db.session.begin() as s:
                await self.jobs.finish_if_complete(s, job)

    async def _one(self, job_id: str | None) -> str | None:
        """Claim, process and record one item; its job id, or None when nothing is ready."""
        async with self.services.db.session.begin() as s:
            item = (await s.execute(text(
                "SELECT i.job_id, i.item_id, i.text, i.instruction, i.attempts, j.model "
                "FROM batch_items i JOIN batch_jobs j ON j.id = i.job_id "
                "WHERE i.status = 'pending' AND j.mode = 'direct' AND (CAST(:job AS text) IS NULL OR i.job_id = :job) "
                "AND (i.not_before IS NULL OR i.not_before <= now()) "
                "ORDER BY j.created_at, i.seq LIMIT 1 FOR UPDATE OF i SKIP LOCKED"
            ), {"job": job_id})).mappings().first()
            if item is None:
                return None
            update = await self._process(item)
            await s.execute(text(
                "UPDATE batch_items SET status = :status, attempts = :attempts, result = :result, error = :error, "
                "not_before = now() + make_interval(secs => :delay), updated_at = now() "
                "WHERE job_id = :job_id AND item_id = :item_id"
            ), dict(update, job_id=item["job_id"], item_id=item["item_id"]))
        return item["job_id"]

    async def _process(self, item) -> dict:
        settings = self.services.settings
        attempts = item["attempts"] + 1
        call = CallInfo(PATTERN, platform="batch", tenant=item["job_id"], channel=item["item_id"][:200])
        if self.budget.rpm or self.budget.tpm:
            await self.budget.acquire(tokens.count(item["instruction"]) + tokens.count(item["text"]) + ANSWER_TOKENS)
        try:
            async with self._gate:
                summary = await summarize(
                    self.services.llm, item["text"], call=call, budget_tokens=settings.context_tokens,
                    model=item["model"], instruction=item["instruction"], max_tokens=ANSWER_TOKENS, concurrency=1,
                )
        except LLMNotConfigured:
            raise
        except LLMError as exc:
            if exc.kind in RETRYABLE and attempts < self.settings.max_attempts:
                delay = backoff(attempts, exc.retry_after)
                log.info("batch item %s/%s: %s, retry %d in %.2f s", item["job_id"], item["item_id"], exc.kind, attempts, delay)
                return dict(status="pending", attempts=attempts, result=None, error=exc.kind, delay=delay)
            return dict(status="failed", attempts=attempts, result=None, error=f"model error: {exc.kind}", delay=0.0)
        except Exception as exc:
            log.exception("batch item %s/%s failed", item["job_id"], item["item_id"])
            return dict(status="failed", attempts=attempts, result=None, error=type(exc).__name__[:100], delay=0.0)
        return dict(status="done", attempts=attempts, result=summary, error=None, delay=0.0)

