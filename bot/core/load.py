"""Bounded in-flight work and the overload counters.

At most `limit` messages are worked on at once in a process; the next one waits for a
slot (backpressure) and is answered when one frees, never refused. A message that has
waited `notice_after` seconds gets a short visible "queued" status where the platform
has one. Bulk messages (scheduled digests, files being added) have slots of their own
(`bulk_limit`), so they never hold the slots questions need. How often that happens, and how long messages wait, is counted here (for the
log and the tests) and in the process's metrics (`bot.core.metrics`, shown on `/metrics`).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from bot.core.metrics import METRICS

log = logging.getLogger(__name__)

QUEUED = "is queued: many questions at once, yours is next in line…"


class Load:
    """The process's in-flight limit and its counters."""

    def __init__(self, *, limit: int = 200, notice_after: float = 5.0, bulk_limit: int = 4) -> None:
        self.limit = limit
        self.bulk_limit = bulk_limit
        self.notice_after = notice_after
        self._slots = asyncio.Semaphore(limit)
        self._bulk_slots = asyncio.Semaphore(bulk_limit)
        self.in_flight = 0
        self.bulk_in_flight = 0
        self.waiting = 0
        self.max_waiting = 0
        self.waited_seconds = 0.0
        self.counters: Counter[str] = Counter()  # queued, queued_notices, ledger_waits, ledger_retries ...
        self._last_warning = 0.0
        METRICS.in_flight_limit.set(limit)

    def count(self, name: str, n: float = 1) -> None:
        """One of `queued`, `queued_notices`, `waited_seconds`, `ledger_waits`, `ledger_retries`."""
        self.counters[name] += n
        METRICS.overload[name].inc(n)

    @asynccontextmanager
    async def slot(self, *, notify: Callable[[], Awaitable[None]] | None = None,
                   bulk: bool = False) -> AsyncIterator[None]:
        """Hold one in-flight slot (a bulk one with `bulk`); wait for it past the limit
        (calling `notify` once, after `notice_after` seconds of waiting)."""
        slots = self._bulk_slots if bulk else self._slots
        if slots.locked():
            await self._wait(slots, notify)
        else:
            await slots.acquire()
        if bulk:
            self.bulk_in_flight += 1
        else:
            self.in_flight += 1
        try:
            yield
        finally:
            if bulk:
                self.bulk_in_flight -= 1
            else:
                self.in_flight -= 1
            slots.release()

    async def _wait(self, slots: asyncio.Semaphore, notify: Callable[[], Awaitable[None]] | None) -> None:
        self.count("queued")
        self.waiting += 1
        METRICS.waiting.inc()
        self.max_waiting = max(self.max_waiting, self.waiting)
        now = time.monotonic()
        if now - self._last_warning > 10:
            self._last_warning = now
            log.warning("overloaded: %d messages in flight (the limits, AIBOT_MAX_IN_FLIGHT and "
                        "AIBOT_MAX_BULK_IN_FLIGHT, are %d and %d), %d waiting", self.in_flight + self.bulk_in_flight,
                        self.limit, self.bulk_limit, self.waiting)
        acquire = asyncio.ensure_future(slots.acquire())
        try:
            done, _ = await asyncio.wait({acquire}, timeout=self.notice_after)
            if not done and notify is not None:
                self.count("queued_notices")
                try:
                    await notify()
                except Exception:  # a status is a courtesy: the answer still comes
                    log.warning("could not show the queued status", exc_info=True)
            await acquire
        except BaseException:
            if acquire.done() and not acquire.cancelled() and acquire.exception() is None:
                slots.release()
            else:
                acquire.cancel()
            raise
        finally:
            self.waiting -= 1
            METRICS.waiting.dec()
            waited = time.monotonic() - now
            self.waited_seconds += waited
            self.count("waited_seconds", waited)
