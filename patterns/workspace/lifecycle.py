"""Deleting removed tenants' data when their grace period is over: a small loop in every
serving process (deletions are idempotent, so several processes may sweep)."""
from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

log = logging.getLogger(__name__)

SWEEP_EVERY = 3600.0  # seconds between sweeps (one also runs at start)


class Sweeper:
    def __init__(self, *, tenants, every: float = SWEEP_EVERY) -> None:
        self.tenants = tenants
        self.every = every
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="tenant-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.tenants.sweep()
            except Exception:
                log.exception("sweeping removed tenants failed; trying again later")
            await asyncio.sleep(self.every)
