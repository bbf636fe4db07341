"""Digest schedules and runs in PostgreSQL (tables from migration 0004).

A run row per (platform, tenant, channel, period) is the final exactly-once guard: it is
inserted before any work, so a second scheduler (or a restarted one) finds it and
does not post again. Only the scheduler leader may take over a run left `running` by a
process that died mid-run.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from sqlalchemy import text

from patterns.batch.times import Spec


@dataclass(frozen=True)
class Schedule:
    platform: str
    tenant: str
    channel: str
    spec: Spec
    active_since: datetime
    last_period: str | None
    last_until: datetime | None

    @property
    def key(self) -> dict:
        return {"platform": self.platform, "tenant": self.tenant, "channel": self.channel}


def _schedule(row) -> Schedule:
    hh, mm = row.at_time.split(":")
    return Schedule(
        row.platform, row.tenant, row.channel, Spec(time(int(hh), int(mm)), row.tz, row.weekdays),
        row.active_since, row.last_period, row.last_until,
    )


_COLS = "platform, tenant, channel, at_time, tz, weekdays, active_since, last_period, last_until"
_KEY = "platform = :platform AND tenant = :tenant AND channel = :channel"


class DigestStore:
    def __init__(self, db) -> None:
        self.db = db

    async def get(self, *, platform: str, tenant: str, channel: str) -> Schedule | None:
        async with self.db.session() as s:
            row = (await s.execute(text(f"SELECT {_COLS} FROM digest_schedules WHERE {_KEY}"),
                                   dict(platform=platform, tenant=tenant, channel=channel))).first()
        return _schedule(row) if row else None

    async def all(self) -> list[Schedule]:
        async with self.db.session() as s:
            rows = (await s.execute(text(f"SELECT {_COLS} FROM digest_schedules ORDER BY platform, tenant, channel"))).all()
        return [_schedule(r) for r in rows]

    async def put(self, *, platform: str, tenant: str, channel: str, spec: Spec, user: str, now: datetime) -> None:
        """Create or change a schedule; a change keeps what was already digested."""
        async with self.db.session.begin() as s:
            await s.execute(
                text(
                    "INSERT INTO digest_schedules (platform, tenant, channel, at_time, tz, weekdays, active_since, created_by) "
                    "VALUES (:platform, :tenant, :channel, :at, :tz, :weekdays, :now, :user) "
                    "ON CONFLICT (platform, tenant, channel) DO UPDATE SET at_time = EXCLUDED.at_time, "
                    "tz = EXCLUDED.tz, weekdays = EXCLUDED.weekdays, active_since = EXCLUDED.active_since"
                ),
                dict(platform=platform, tenant=tenant, channel=channel, at=f"{spec.at:%H:%M}", tz=spec.tz,
                     weekdays=spec.weekdays, now=now, user=user[:200]),
            )

    async def remove(self, *, platform: str, tenant: str, channel: str) -> bool:
        async with self.db.session.begin() as s:
            res = await s.execute(text(f"DELETE FROM digest_schedules WHERE {_KEY}"),
                                  dict(platform=platform, tenant=tenant, channel=channel))
        return res.rowcount > 0

    async def claim(
        self, sched: Schedule, *, period: str, since: datetime | None, until: datetime, owner: str, take_over: bool
    ) -> int | None:
        """The run id if this caller now owns the period's run, else None."""
        params = dict(sched.key, period=period, since=since, until=until, owner=owner)
        async with self.db.session.begin() as s:
            row = (await s.execute(
                text(
                    "INSERT INTO digest_runs (platform, tenant, channel, period, status, since, until, owner) "
                    "VALUES (:platform, :tenant, :channel, :period, 'running', :since, :until, :owner) "
                    "ON CONFLICT ON CONSTRAINT uq_digest_runs_period DO NOTHING RETURNING id"
                ), params)).first()
            if row is None and take_over:
                row = (await s.execute(
                    text(
                        f"UPDATE digest_runs SET owner = :owner, created_at = now() WHERE {_KEY} "
                        "AND period = :period AND status = 'running' AND owner <> :owner RETURNING id"
                    ), params)).first()
        return row.id if row else None

    async def finish(
        self, run_id: int, sched: Schedule, *, period: str, status: str, until: datetime,
        messages: int = 0, posted_id: str | None = None, detail: str | None = None,
    ) -> None:
        """Close the run and move the schedule's window past it, in one transaction."""
        async with self.db.session.begin() as s:
            await s.execute(
                text(
                    "UPDATE digest_runs SET status = :status, messages = :messages, posted_id = :posted_id, "
                    "detail = :detail, finished_at = now() WHERE id = :id"
                ),
                dict(id=run_id, status=status, messages=messages, posted_id=posted_id, detail=detail),
            )
            await s.execute(
                text(
                    f"UPDATE digest_schedules SET last_period = :period, "
                    f"last_until = CASE WHEN :advance THEN :until ELSE last_until END WHERE {_KEY} "
                    "AND (last_period IS NULL OR last_period < :period)"
                ),
                dict(sched.key, period=period, until=until, advance=status in ("posted", "quiet")),
            )

    async def export_tenant(self, platform: str, tenant: str) -> list[dict]:
        """A tenant's schedules, JSON-ready."""
        async with self.db.session() as s:
            rows = (await s.execute(text(
                "SELECT channel, at_time, tz, weekdays, active_since, last_period, created_by FROM digest_schedules "
                "WHERE platform = :platform AND tenant = :tenant ORDER BY channel"),
                dict(platform=platform, tenant=tenant))).mappings().all()
        return [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()} for r in rows]

    async def delete_tenant(self, platform: str, tenant: str) -> dict[str, int]:
        where = dict(platform=platform, tenant=tenant)
        async with self.db.session.begin() as s:
            runs = (await s.execute(text("DELETE FROM digest_runs WHERE platform = :platform AND tenant = :tenant"),
                                    where)).rowcount
            schedules = (await s.execute(text(
                "DELETE FROM digest_schedules WHERE platform = :platform AND tenant = :tenant"), where)).rowcount
        return {"digest schedules": schedules, "digest runs": runs}

    async def runs(self, *, platform: str, tenant: str, channel: str) -> list[dict]:
        async with self.db.session() as s:
            rows = (await s.execute(
                text(f"SELECT period, status, messages, since, until, finished_at FROM digest_runs WHERE {_KEY} ORDER BY period"),
                dict(platform=platform, tenant=tenant, channel=channel))).mappings().all()
        return [dict(r) for r in rows]
