"""The bot processes serving one database (`aibot run --workers N`, replicas on several
hosts), and how many of them serve each platform, so that a limit a platform counts per
workspace rather than per process (Slack's per-method tiers) is split between them:
each process takes `share(platform)` = 1/N of it, N the live processes serving that
platform.

Each process holds a row in `bot_processes` with a lease that its heartbeat renews every
lease/3 (`AIBOT_JOURNAL_LEASE`, the answer journal's). One statement renews the row and
reads the other live ones, so knowing N costs one round trip per lease/3 and nothing on
the hot path (a share is a number in memory). A process that stops deletes its row: the
others take its share at their next heartbeat. One that crashed counts until its lease
runs out, or only until the next heartbeat when it ran on this machine and its pid is gone (as
in the answer journal).

While N changes the shares may add up to a little more than the whole for up to lease/3
(a process joining takes 1/N at once, the others learn of it at their next heartbeat);
the budgets keep ~10% headroom below Slack's tiers and Slack tolerates short bursts. A
heartbeat that fails (database outage) keeps the last count: the shares stay as they were.
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter

from sqlalchemy import text

from bot.core import processes
from bot.core.journal import dead_neighbour

log = logging.getLogger(__name__)

# renew this process's row and read the other live ones; rows whose lease ran out a
# while ago (crashed processes) are removed on the way
BEAT = text("""
WITH me AS (
    INSERT INTO bot_processes (owner, platforms, lease_until)
    VALUES (:owner, CAST(:platforms AS varchar[]), now() + make_interval(secs => :lease))
    ON CONFLICT (owner) DO UPDATE SET platforms = EXCLUDED.platforms, lease_until = EXCLUDED.lease_until
), gone AS (
    DELETE FROM bot_processes WHERE lease_until < now() - interval '10 minutes' AND owner <> :owner
)
SELECT owner, platforms FROM bot_processes WHERE lease_until >= now() AND owner <> :owner
""")

LEAVE = text("DELETE FROM bot_processes WHERE owner = :owner")


class Peers:
    def __init__(self, *, db, owner: str, lease: float = 15.0) -> None:
        self.db = db
        self.owner = owner  # this process (the answer journal's owner id: machine, pid, random part)
        self.lease = float(lease)
        self.platforms: set[str] = set()  # the platforms this process serves
        self._counts: dict[str, int] = {}
        self._task: asyncio.Task | None = None

    # --- the hot path: numbers in memory ---------------------------------------------

    def count(self, platform: str) -> int:
        """Live processes serving `platform` on this database, this one included (at least 1)."""
        return max(1, self._counts.get(platform, 1))

    def share(self, platform: str) -> float:
        """The part of a per-workspace limit of `platform` this process may spend."""
        return 1.0 / self.count(platform)

    # --- membership ----------------------------------------------------------------------

    async def serve(self, platform: str) -> None:
        """This process serves `platform` from now on: its row says so and N is read at
        once (before the platform's first write), then renewed every lease/3."""
        self.platforms.add(platform)
        try:
            await self.beat()
        except Exception as exc:  # the database is down: counted alone until it is back
            log.warning("could not register this process's %s share (%s); retrying", platform, type(exc).__name__)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="process-registry-heartbeat")

    async def beat(self) -> None:
        """Renew this process's row and count the live processes per platform."""
        async with self.db.session.begin() as s:
            rows = (await s.execute(BEAT, {"owner": self.owner, "platforms": sorted(self.platforms),
                                           "lease": self.lease})).all()
        machine = processes.machine()
        counts = Counter(self.platforms)
        for owner, platforms in rows:
            if not dead_neighbour(owner, machine):
                counts.update(set(platforms or ()))
        if dict(counts) != self._counts:
            log.info("processes serving this database: %s",
                     ", ".join(f"{p} {n}" for p, n in sorted(counts.items())) or "none")
        self._counts = dict(counts)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await self.beat()
            except Exception as exc:
                log.warning("process registry heartbeat failed (%s); keeping the last count", type(exc).__name__)

    async def stop(self) -> None:
        """Stop renewing (the row stays until its lease runs out, as a crashed process's would)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def leave(self) -> None:
        """Stop and delete this process's row: the others take its share at their next heartbeat."""
        await self.stop()
        if not self.platforms:
            return
        self.platforms.clear()
        try:
            async with self.db.session.begin() as s:
                await s.execute(LEAVE, {"owner": self.owner})
        except Exception as exc:
            log.warning("could not leave the process registry (%s); its lease runs out instead", type(exc).__name__)
