"""Database outages: answers held, users told, the database retried with backoff.

When a message cannot be handled because PostgreSQL is unreachable (killed, restarting,
a network cut), the router holds it here and tells the asker plainly that the answer is
delayed; the platform event was acknowledged already, so nothing is redelivered. A
background task retries the database with exponential backoff (restarting the embedded
server when it is the bot's own) and, once it answers again, handles the held messages
in order. `/healthz` answers 503 meanwhile (it checks the database itself).

What is held lives in this process's memory, and, for journaled platforms, in a spool
file on local disk (`bot.core.spool`) that the next process on this machine picks up if
this one dies first (docs/operations.md, "Delivery guarantee").
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

import asyncpg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = logging.getLogger(__name__)

DELAYED = ("My database is unreachable right now, so this answer is delayed: I'll answer here as soon as "
           "it is back.")
MAX_HELD = 1_000
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0


def is_db_outage(exc: BaseException | None) -> bool:
    """Whether `exc` (or what caused it) says the database cannot be reached, as opposed
    to a query it refused."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, (OperationalError, InterfaceError)):
            return True
        if isinstance(exc, (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
                            ConnectionError, ConnectionRefusedError)):
            return True
        if isinstance(exc, OSError) and exc.errno is not None:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


class Outage:
    """Messages waiting for the database, and the task that brings it back."""

    def __init__(self, *, db, redeliver: Callable[..., Awaitable[object]], max_held: int = MAX_HELD) -> None:
        self.db = db
        self.redeliver = redeliver
        self.max_held = max_held
        self.held: deque = deque()
        self.on_drained: Callable[[], None] | None = None  # every held message handled (the spool goes)
        self._task: asyncio.Task | None = None

    @property
    def down(self) -> bool:
        return self._task is not None and not self._task.done()

    def hold(self, msg, conv) -> bool:
        """Keep `msg` for when the database is back; False when too many wait already."""
        if len(self.held) >= self.max_held:
            return False
        self.held.append((msg, conv))
        self.noticed()
        return True

    def noticed(self) -> None:
        """Someone found the database unreachable (a message, the usage ledger's writer):
        start bringing it back, if that is not under way already."""
        if not self.down:
            log.warning("the database is unreachable; retrying it (held answers: %d)", len(self.held))
            self._task = asyncio.create_task(self._recover())

    async def _recover(self) -> None:
        delay = FIRST_BACKOFF
        while True:  # a redelivery that meets the outage again is held again, at the end
            while not await self._reachable():
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
            if not self.held:
                if self.on_drained is not None:
                    self.on_drained()
                return
            msg, conv = self.held.popleft()
            log.info("the database answers; handling a held %s message", msg.platform)
            await self.redeliver(msg, conv)

    async def _reachable(self) -> bool:  # noqa: D401
        try:
            revive = getattr(self.db, "revive", None)
            if revive is not None:
                await revive()
            async with asyncio.timeout(5):
                async with self.db.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            return True
        except Exception as exc:
            log.info("database still unreachable: %s", type(exc).__name__)
            return False

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
