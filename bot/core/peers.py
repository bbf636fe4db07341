"""The bot processes serving one database (`aibot run --workers N`, replicas on several
hosts) and the workspaces each is writing to, so that a limit a platform counts per
workspace rather than per process (Slack's per-method tiers) is split between the
processes using it: in a workspace where N live processes are writing, each takes
`share(platform, tenant)` = 1/N of its limits; a process writing there alone takes the
whole, however many processes there are.

Each process holds a row in `bot_processes`: the platforms it serves, the workspaces it
wrote to lately (its adapter's `active_tenants(within)`: answers in flight there, or a
write in the last lease) and a lease. A heartbeat renews the row every BEAT seconds (or
lease/3 when shorter; `AIBOT_JOURNAL_LEASE`, the answer journal's) and reads the other
live rows in the same statement, so the shares cost one small round trip per heartbeat
and nothing on the hot path (a share is a dictionary lookup). A process that stops
deletes its row: the others take its share at their next heartbeat. One that crashed
counts until its lease runs out, or only until the next heartbeat when it ran on this
machine and its pid is gone (as in the answer journal).

While the writers of a workspace change, the shares may add up to more than the whole
for up to two heartbeats: a process starting to write there takes 1/N at once (N from
its last read), the others learn of it once its next heartbeat has published it and
theirs has read it. That is why the Slack budget splits its bursts by `count(platform)`
(every process serving Slack) rather than by writers: only the rate can be over-spent,
for a few seconds. The budgets keep ~10% headroom below Slack's tiers and Slack
tolerates short bursts; a 429 that still comes is retried after its Retry-After. A
heartbeat that fails (database outage) keeps the last counts.
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable

from sqlalchemy import text

from bot.core import processes
from bot.core.journal import dead_neighbour
from bot.core.metrics import METRICS
from bot.core.priority import shared_task

log = logging.getLogger(__name__)

BEAT = 2.0  # seconds between heartbeats at most (lease/3 when that is shorter)
MAX_ACTIVE = 10_000  # workspaces one row lists at most: a bound on the row, far above one process's writing

# renew this process's row and read the other live ones; rows whose lease ran out a
# while ago (crashed processes) are removed on the way
HEARTBEAT = text("""
WITH me AS (
    INSERT INTO bot_processes (owner, platforms, active, lease_until)
    VALUES (:owner, CAST(:platforms AS varchar[]), CAST(:active AS text[]), now() + make_interval(secs => :lease))
    ON CONFLICT (owner) DO UPDATE SET platforms = EXCLUDED.platforms, active = EXCLUDED.active,
                                      lease_until = EXCLUDED.lease_until
), gone AS (
    DELETE FROM bot_processes WHERE lease_until < now() - interval '10 minutes' AND owner <> :owner
)
SELECT owner, platforms, active FROM bot_processes WHERE lease_until >= now() AND owner <> :owner
""")

LEAVE = text("DELETE FROM bot_processes WHERE owner = :owner")

Active = Callable[[float], Iterable[str]]  # the tenants written to within the last so many seconds


class Peers:
    def __init__(self, *, db, owner: str, lease: float = 15.0) -> None:
        self.db = db
        self.owner = owner  # this process (the answer journal's owner id: machine, pid, random part)
        self.lease = float(lease)
        self.every = min(BEAT, self.lease / 3)
        self.platforms: dict[str, Active | None] = {}  # the platforms this process serves
        self._counts: dict[str, int] = {}  # platform -> live processes serving it, this one included
        self._writing: dict[tuple[str, str], int] = {}  # (platform, tenant) -> other processes writing there
        self._task: asyncio.Task | None = None
        # the other processes with a live row at the last heartbeat (None: not read yet);
        # an owner missing here is gone, wherever it ran (a restarted container included)
        self.live: set[str] | None = None

    # --- the hot path: numbers in memory ---------------------------------------------

    def count(self, platform: str) -> int:
        """Live processes serving `platform` on this database, this one included (at least 1)."""
        return max(1, self._counts.get(platform, 1))

    def share(self, platform: str, tenant: str) -> float:
        """The part of `tenant`'s limits on `platform` this process may spend: 1/N, N the
        processes writing there (this one included)."""
        return 1.0 / (1 + self._writing.get((platform, tenant), 0))

    # --- membership ----------------------------------------------------------------------

    async def serve(self, platform: str, *, active: Active | None = None) -> None:
        """This process serves `platform` from now on (`active`: the tenants it wrote to
        lately); its row says so and the others are read at once (before the platform's
        first write), then every heartbeat."""
        self.platforms[platform] = active
        try:
            await self.beat()
        except Exception as exc:  # the database is down: counted alone until it is back
            log.warning("could not register this process's %s share (%s); retrying", platform, type(exc).__name__)
        if self._task is None or self._task.done():
            self._task = shared_task(self._loop(), name="process-registry-heartbeat")

    def _active(self) -> list[str]:
        out: list[str] = []
        for platform, active in self.platforms.items():
            if active is not None:
                out.extend(f"{platform}:{tenant}" for tenant in active(self.lease))
        return out[:MAX_ACTIVE]

    async def beat(self) -> None:
        """Renew this process's row (and the workspaces it writes to), and read the others'."""
        async with self.db.session.begin() as s:
            rows = (await s.execute(HEARTBEAT, {"owner": self.owner, "platforms": sorted(self.platforms),
                                                "active": self._active(), "lease": self.lease})).all()
        machine = processes.machine()
        counts, writing, live = Counter(list(self.platforms)), Counter(), set()
        for owner, platforms, active in rows:
            if dead_neighbour(owner, machine):
                continue
            live.add(owner)
            counts.update(set(platforms or ()))
            for entry in set(active or ()):
                platform, _, tenant = entry.partition(":")
                writing[(platform, tenant)] += 1
        if dict(counts) != self._counts:
            log.info("processes serving this database: %s",
                     ", ".join(f"{p} {n}" for p, n in sorted(counts.items())) or "none")
        self._counts, self._writing, self.live = dict(counts), dict(writing), live
        for platform, n in counts.items():
            METRICS.processes.labels(platform).set(n)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.beat()
            except Exception as exc:
                log.warning("process registry heartbeat failed (%s); keeping the last counts", type(exc).__name__)

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
