"""Periodic clean-up of tables that would otherwise only grow: expired exact and semantic
cache entries and duplicate-delivery records past their window.

Each running bot process does it every `every` seconds (the first pass shortly after
start). The deletes are idempotent, so replicas sharing a database need no leader: a
second pass simply finds nothing. A failed pass (database down) is logged and retried
at the next interval; it never disturbs answers.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress

log = logging.getLogger(__name__)

Purge = Callable[[], Awaitable[int]]


class Housekeeping:
    def __init__(self, *, jobs: dict[str, Purge], every: float = 3600.0, first_after: float = 60.0) -> None:
        self.jobs = jobs
        self.every = every
        self.first_after = first_after
        self._task: asyncio.Task | None = None

    async def run_once(self) -> dict[str, int]:
        """One pass: rows removed per job (a job that failed is left out)."""
        removed: dict[str, int] = {}
        for name, purge in self.jobs.items():
            try:
                removed[name] = await purge()
            except Exception:
                log.warning("housekeeping: could not purge %s; trying again later", name, exc_info=True)
        if any(removed.values()):
            log.info("housekeeping removed %s",
                     ", ".join(f"{n} {name}" for name, n in removed.items() if n))
        return removed

    def start(self) -> None:
        if self._task is None and self.jobs:
            self._task = asyncio.create_task(self._loop(), name="housekeeping")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        await asyncio.sleep(self.first_after)
        while True:
            await self.run_once()
            await asyncio.sleep(self.every)
