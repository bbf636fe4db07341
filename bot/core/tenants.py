"""A tenant's data, whoever stores it: export, deletion, and the lifecycle of a tenant
that removed the bot.

Every feature (and the core) that keeps data per tenant registers a `TenantData` under a
name: `export` returns it as JSON-ready values, `delete` removes it and says how many rows
of what went. The service then:

- exports or deletes a tenant on request (`aibot tenant export|delete`, `/aibot`);
- on `removed` (a Slack uninstall or token revocation, the bot's removal from a Discord
  guild) records the tenant as removed and deletes its data once the grace period
  (AIBOT_TENANT_GRACE_DAYS, default 30, 0 = at once) is over: `sweep` runs it, and logs
  what it deleted; a tenant that comes back before then (`restored`) keeps its data;
- tells scheduled work to leave removed tenants alone (`is_removed`).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import text

log = logging.getLogger(__name__)

Exporter = Callable[[str, str], Awaitable[Any]]  # (platform, tenant) -> JSON-ready value
Deleter = Callable[[str, str], Awaitable[dict[str, int]]]  # (platform, tenant) -> {"what": rows}


@dataclass(frozen=True)
class TenantData:
    export: Exporter
    delete: Deleter


class Tenants:
    def __init__(self, db, *, grace: timedelta) -> None:
        self.db = db
        self.grace = grace
        self._data: dict[str, TenantData] = {}

    def register(self, name: str, data: TenantData) -> None:
        self._data[name] = data

    # --- on request -----------------------------------------------------------------

    async def export(self, platform: str, tenant: str) -> dict[str, Any]:
        """Everything stored for the tenant, by kind (JSON-ready)."""
        out: dict[str, Any] = {"platform": platform, "tenant": tenant,
                               "exported_at": datetime.now(timezone.utc).isoformat()}
        for name, data in self._data.items():
            out[name] = await data.export(platform, tenant)
        return out

    async def delete(self, platform: str, tenant: str, *, reason: str = "requested") -> dict[str, int]:
        """Delete everything stored for the tenant now; the counts by kind, also logged."""
        counts: dict[str, int] = {}
        for data in self._data.values():
            counts.update(await data.delete(platform, tenant))
        report = ", ".join(f"{n} {what}" for what, n in counts.items()) or "nothing"
        log.warning("deleted the data of %s tenant %s (%s): %s", platform, tenant, reason, report)
        async with self.db.session.begin() as s:
            await s.execute(text(
                "INSERT INTO tenant_lifecycle (platform, tenant, status, reason, deleted_at, report) "
                "VALUES (:p, :t, 'deleted', :r, now(), :report) ON CONFLICT (platform, tenant) DO UPDATE "
                "SET status = 'deleted', deleted_at = now(), report = EXCLUDED.report, "
                "reason = tenant_lifecycle.reason || CASE WHEN tenant_lifecycle.reason = '' THEN '' ELSE '; ' END "
                "|| EXCLUDED.reason"),
                dict(p=platform, t=tenant, r=reason, report=json.dumps(counts)))
        return counts

    # --- lifecycle ------------------------------------------------------------------

    async def removed(self, *, platform: str, tenant: str, reason: str) -> None:
        """The tenant removed the bot: its data goes after the grace period (at once if 0)."""
        async with self.db.session.begin() as s:
            await s.execute(text(
                "INSERT INTO tenant_lifecycle (platform, tenant, status, reason, since, delete_after) "
                "VALUES (:p, :t, 'removed', :r, now(), now() + :grace) ON CONFLICT (platform, tenant) DO UPDATE "
                "SET status = 'removed', reason = EXCLUDED.reason, since = now(), delete_after = EXCLUDED.delete_after, "
                "deleted_at = NULL"),
                dict(p=platform, t=tenant, r=reason[:100], grace=self.grace))
        log.warning("%s tenant %s removed the bot (%s): its data will be deleted %s", platform, tenant, reason,
                    "now" if not self.grace else f"after {self.grace.days} days unless it comes back")
        if not self.grace:
            await self.delete(platform, tenant, reason=reason)

    async def restored(self, *, platform: str, tenant: str) -> None:
        """The tenant installed the bot again: nothing is deleted."""
        async with self.db.session.begin() as s:
            gone = (await s.execute(text(
                "DELETE FROM tenant_lifecycle WHERE platform = :p AND tenant = :t AND status = 'removed'"),
                dict(p=platform, t=tenant))).rowcount
        if gone:
            log.info("%s tenant %s is back: its pending deletion is cancelled", platform, tenant)

    async def is_removed(self, platform: str, tenant: str) -> bool:
        async with self.db.session() as s:
            return bool((await s.execute(text(
                "SELECT 1 FROM tenant_lifecycle WHERE platform = :p AND tenant = :t AND status IN ('removed', 'deleted')"),
                dict(p=platform, t=tenant))).first())

    async def sweep(self) -> list[tuple[str, str]]:
        """Delete the data of every removed tenant whose grace period is over."""
        async with self.db.session() as s:
            due = (await s.execute(text(
                "SELECT platform, tenant, reason FROM tenant_lifecycle WHERE status = 'removed' AND delete_after <= now()"
            ))).all()
        for platform, tenant, reason in due:
            await self.delete(platform, tenant, reason=f"{reason}, grace period over")
        return [(p, t) for p, t, _ in due]

    async def status(self, platform: str, tenant: str) -> dict | None:
        async with self.db.session() as s:
            row = (await s.execute(text(
                "SELECT status, reason, since, delete_after, deleted_at, report FROM tenant_lifecycle "
                "WHERE platform = :p AND tenant = :t"), dict(p=platform, t=tenant))).mappings().first()
        return dict(row) if row else None


async def usage_rows(db, platform: str, tenant: str, *, ledger=None) -> list[dict]:
    """The usage ledger rows of a tenant (its model calls), for an export (rows still
    queued in `ledger` are written first)."""
    if ledger is not None:
        await ledger.flush(timeout=30)
    async with db.session() as s:
        rows = (await s.execute(text(
            "SELECT created_at, pattern, model, prompt_tokens, completion_tokens, cost_usd, outcome, channel, user_id "
            "FROM usage WHERE platform = :p AND workspace = :t ORDER BY id"), dict(p=platform, t=tenant))).mappings().all()
    return [{k: (v.isoformat() if isinstance(v, datetime) else float(v) if k == "cost_usd" else v) for k, v in r.items()}
            for r in rows]


async def delete_usage(db, platform: str, tenant: str, *, ledger=None) -> dict[str, int]:
    if ledger is not None:  # a row still queued would otherwise be written after the deletion
        await ledger.flush(timeout=30)
    async with db.session.begin() as s:
        n = (await s.execute(text("DELETE FROM usage WHERE platform = :p AND workspace = :t"),
                             dict(p=platform, t=tenant))).rowcount
    return {"usage rows": n}
