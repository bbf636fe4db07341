"""Runs scheduled digests: APScheduler (AsyncIOScheduler) in the bot process, one leader
per platform per database.

Leadership is a PostgreSQL advisory lock per platform (Slack, Discord, ...), held on a
dedicated connection by a process that serves that platform: a Slack-only process and a
Discord-only process on one database each lead their own platform's digests, and no
leader sits on schedules it cannot post. If a leader dies, its connection closes, the
lock is released and another process serving that platform takes over at its next
tick. Each tick the leader looks at every schedule with an injected clock: the latest
occurrence not yet handled is claimed (a run row, unique per channel and period: the final
exactly-once guard) and then either posted, or skipped and logged when it is later than
AIBOT_DIGEST_GRACE (the bot was down at the time). A digest is a synthetic event (the
internal command `digest-run`) dispatched through the router, like any user's command.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
import zlib
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timezone

from sqlalchemy import text

from bot.core.messages import Incoming, utcnow
from bot.core.priority import bulk
from patterns.batch import times
from patterns.batch.digest import DigestReply
from patterns.batch.schedules import DigestStore, Schedule
from patterns.batch.settings import BatchSettings

log = logging.getLogger(__name__)

LOCK_KEY = 0x61_69_62_6F_74_07  # "aibot" + issue 7; one lock per platform derives from it
RUN_COMMAND = "digest-run"


def platform_key(platform: str) -> int:
    """The advisory lock key of one platform's digest leadership (a signed 64-bit int)."""
    return (LOCK_KEY << 16 | zlib.crc32(platform.encode()) & 0xFFFF) - (1 << 62)


class Leadership:
    """A session-level advisory lock on its own connection (so it lives as long as we do)."""

    def __init__(self, engine, *, key: int = LOCK_KEY) -> None:
        self.engine = engine
        self.key = key
        self._conn = None

    @property
    def is_leader(self) -> bool:
        return self._conn is not None

    async def acquire(self) -> bool:
        """True if we hold the lock (checking that the connection is still alive)."""
        if self._conn is not None:
            try:
                # bounded: a half-open connection must not hang every later tick
                async with asyncio.timeout(10):
                    await self._conn.execute(text("SELECT 1"))
                    await self._conn.commit()
                return True
            except Exception:
                log.warning("lost the scheduler leader connection; will try to take it again")
                await self.release()
        conn = await self.engine.connect()
        try:
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})).scalar()
            await conn.commit()
        except BaseException:
            await conn.close()
            raise
        if not got:
            await conn.close()
            return False
        self._conn = conn
        log.info("this process is the digest scheduler leader")
        return True

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(Exception):
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                await conn.commit()
            with suppress(Exception):
                await conn.close()


class Leaders:
    """One `Leadership` per platform this process serves."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self._by_platform: dict[str, Leadership] = {}

    async def acquire(self, platforms: list[str]) -> set[str]:
        """The platforms (of `platforms`) whose digests this process leads now."""
        for gone in set(self._by_platform) - set(platforms):  # a platform stopped here
            await self._by_platform.pop(gone).release()
        led = set()
        for platform in platforms:
            lead = self._by_platform.setdefault(platform, Leadership(self.engine, key=platform_key(platform)))
            if await lead.acquire():
                led.add(platform)
        return led

    def leads(self, platform: str) -> bool:
        lead = self._by_platform.get(platform)
        return lead is not None and lead.is_leader

    @property
    def is_leader(self) -> bool:
        return any(lead.is_leader for lead in self._by_platform.values())

    async def release(self) -> None:
        for lead in self._by_platform.values():
            await lead.release()


class _Capture:
    """The channel's conversation, keeping the ids of what the digest posted."""

    def __init__(self, conv) -> None:
        self.conv = conv
        self.limits = conv.limits
        self.posted: list[str] = []

    async def post(self, text: str, *, ephemeral: bool = False) -> str:
        mid = await self.conv.post(text)
        self.posted.append(mid)
        return mid

    async def edit(self, message_id: str, text: str) -> None:
        await self.conv.edit(message_id, text)

    async def history(self, **kw):
        return await self.conv.history(**kw)

    async def download(self, attachment):
        return await self.conv.download(attachment)


def scheduled_event(sched: Schedule, *, period: str, since: datetime | None, until: datetime) -> Incoming:
    """The synthetic event of a scheduled digest: the internal `digest-run` command with
    its window as typed options; nobody waits for it, so a failure is logged, not posted."""
    return Incoming(
        platform=sched.platform, tenant=sched.tenant, channel=sched.channel, user="scheduler",
        user_name="scheduler", text="", command=RUN_COMMAND, id=f"digest:{period}", ts=until, unattended=True,
        options={"since": since.isoformat() if since else "", "until": until.isoformat(), "tz": sched.spec.tz},
    )


class DigestScheduler:
    def __init__(self, *, services, router, settings: BatchSettings, clock: Callable[[], datetime] = utcnow,
                 owner: str | None = None) -> None:
        self.services = services
        self.router = router
        self.settings = settings
        self.clock = clock
        self.owner = owner or uuid.uuid4().hex[:16]
        self.store = DigestStore(services.db)
        self.leader = Leaders(services.db.engine)
        self._aps = None
        self._current: asyncio.Task | None = None
        self._stopping = False

    async def start(self) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        self._aps = AsyncIOScheduler(timezone=timezone.utc, event_loop=asyncio.get_running_loop())
        self._aps.add_job(
            self.tick, "interval", seconds=self.settings.digest_tick, id="digest-tick",
            next_run_time=datetime.now(timezone.utc), max_instances=1, coalesce=True, misfire_grace_time=None,
        )
        self._aps.start()

    async def stop(self) -> None:
        """Stop ticking; a digest in progress is cancelled (its run stays `running` and the
        next leader completes it)."""
        self._stopping = True
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None
        current, self._current = self._current, None
        if current is not None and not current.done() and current is not asyncio.current_task():
            current.cancel()
            await asyncio.gather(current, return_exceptions=True)
        await self.leader.release()

    async def tick(self) -> int:
        """One scheduler round; the number of digests posted. Never raises."""
        self._current = asyncio.current_task()
        try:
            led = await self.leader.acquire(self.services.channels.platforms)
            if not led:
                return 0
            with bulk():  # digests go behind questions on the pool, the slots and the platform budgets
                return await self.run_due(platforms=led)
        except Exception:
            log.exception("digest scheduler tick failed")
            return 0
        except asyncio.CancelledError:
            if self._stopping:  # stop() cancelled it (shutdown): not an error to report
                return 0
            raise
        finally:
            self._current = None

    async def run_due(self, now: datetime | None = None, *, platforms: set[str] | None = None) -> int:
        """Handle the due schedules (of `platforms` only, when given); digests posted."""
        now = now or self.clock()
        posted = 0
        for sched in await self.store.all():
            if platforms is not None and sched.platform not in platforms:
                continue
            try:
                posted += await self.run_one(sched, now) == "posted"
            except Exception:
                log.exception("digest for %s/%s failed", sched.platform, sched.channel)
        return posted

    async def run_one(self, sched: Schedule, now: datetime) -> str | None:
        """Handle the schedule's latest due period, if not handled yet; its outcome."""
        spec = sched.spec
        occ = times.latest(spec, now)
        if occ is None or occ < sched.active_since:
            return None
        period = times.period(spec, occ)
        if sched.last_period is not None and sched.last_period >= period:
            return None
        if sched.platform not in self.services.channels.platforms:
            return None  # that platform is not running here (yet): try again next tick, within the grace
        tenants = self.services.tenants
        if tenants is not None and await tenants.is_removed(sched.platform, sched.tenant):
            return None  # the workspace removed the bot: nothing is posted there any more
        since = sched.last_until or times.previous(spec, occ)
        run_id = await self.store.claim(
            sched, period=period, since=since, until=occ, owner=self.owner, take_over=self.leader.leads(sched.platform)
        )
        if run_id is None:
            return None  # another scheduler has it (or had it)
        late = (now - occ).total_seconds()
        if late > self.settings.digest_grace:
            log.warning(
                "skipping the %s digest of %s/%s: due %s, %.0f s ago, beyond AIBOT_DIGEST_GRACE=%s s",
                period, sched.platform, sched.channel, occ.isoformat(), late, self.settings.digest_grace,
            )
            await self.store.finish(run_id, sched, period=period, status="skipped", until=occ, detail="late")
            return "skipped"
        conv = _Capture(self.services.channels.open(sched.platform, tenant=sched.tenant, channel=sched.channel))
        handled = await self.router.dispatch(scheduled_event(sched, period=period, since=since, until=occ), conv)
        digest = handled.result
        if handled.error is not None or not isinstance(digest, DigestReply):
            status, messages = "failed", 0
        else:
            status, messages = ("posted" if digest.text.strip() else "quiet"), digest.messages
        await self.store.finish(
            run_id, sched, period=period, status=status, until=occ, messages=messages,
            posted_id=conv.posted[-1] if conv.posted else None,
        )
        log.info("digest %s of %s/%s: %s (%d messages)", period, sched.platform, sched.channel, status, messages)
        return status
