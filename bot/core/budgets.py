"""Spend limits and a request rate, checked before every model call (never before a
cache hit, which is free). Over a limit the call is refused with one sentence that names
the limit and when it resets; nothing is called, so nothing is charged.

Spend is read from the usage ledger: per workspace and per user, this UTC day and this
UTC month; the rate counts the user's model calls in the last minute. With a limit set,
the ledger's queued rows are written first (for up to 2 s), so the spend is current."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

from sqlalchemy import text

from bot.core.costs import CostSettings
from bot.core.errors import UserError
from bot.core.messages import CallInfo, utcnow

log = logging.getLogger(__name__)


class OverBudget(UserError):
    """A limit is reached; the message says which one and when it resets."""


def day_start(now: datetime) -> datetime:
    return now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: datetime) -> datetime:
    return day_start(now).replace(day=1)


def next_month(now: datetime) -> datetime:
    start = month_start(now)
    return (start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1))


_SPEND = text(
    """
    SELECT coalesce(sum(cost_usd) FILTER (WHERE created_at >= :day), 0),
           coalesce(sum(cost_usd), 0),
           coalesce(sum(cost_usd) FILTER (WHERE user_id = :user AND created_at >= :day), 0),
           coalesce(sum(cost_usd) FILTER (WHERE user_id = :user), 0),
           count(*) FILTER (WHERE user_id = :user AND created_at >= :minute AND NOT cache_hit)
    FROM usage WHERE workspace = :workspace AND created_at >= :since
    """
)


class Budgets:
    def __init__(self, *, db, settings: CostSettings, clock=utcnow, ledger=None) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.ledger = ledger  # usage rows are written behind answers: the queued ones count too
        # a workspace's own monthly budget, set by its admins (`/aibot settings set monthly_budget_usd`)
        self.workspace_budget: Callable[[str, str], Awaitable[float | None]] | None = None

    async def _admin_limit(self, call: CallInfo) -> float | None:
        if self.workspace_budget is None or not call.tenant:
            return None
        try:
            return await self.workspace_budget(call.platform, call.tenant)
        except Exception:
            log.warning("could not read the workspace's budget setting", exc_info=True)
            return None

    async def check(self, call: CallInfo) -> None:
        """Raise OverBudget when `call`'s workspace or user has reached a limit."""
        s = self.settings
        admin_limit = await self._admin_limit(call)
        if not (s.any_limit or admin_limit) or not call.tenant:
            return
        if self.ledger is not None:  # only with a limit set: spend includes the rows still queued
            await self.ledger.flush(timeout=2.0)
        now = self.clock()
        day, month, minute = day_start(now), month_start(now), now - timedelta(minutes=1)
        try:
            async with self.db.engine.connect() as conn:
                ws_day, ws_month, u_day, u_month, u_rate = (await conn.execute(_SPEND, dict(
                    workspace=call.tenant, user=call.user, day=day, minute=minute, since=min(month, minute),
                ))).one()
        except Exception:  # the ledger unreadable: serve rather than refuse everyone
            log.warning("could not read spend for budgets; the call goes ahead", exc_info=True)
            return
        tomorrow = (day + timedelta(days=1)).strftime("%Y-%m-%d 00:00 UTC")
        month_end = next_month(now).strftime("%Y-%m-%d 00:00 UTC")
        checks = (
            (s.workspace_daily_usd, ws_day, "this workspace's daily budget", tomorrow),
            (s.workspace_monthly_usd, ws_month, "this workspace's monthly budget", month_end),
            (admin_limit, ws_month, "this workspace's monthly budget (set by its admins)", month_end),
            (s.user_daily_usd, u_day, "your daily budget", tomorrow),
            (s.user_monthly_usd, u_month, "your monthly budget", month_end),
        )
        for limit, spent, name, resets in checks:
            if limit and float(spent) >= limit:
                raise OverBudget(f"I can't call the model: {name} of ${limit:.2f} is used up "
                                 f"(${float(spent):.2f} spent). It resets at {resets}.")
        if s.user_requests_per_minute and u_rate >= s.user_requests_per_minute:
            raise OverBudget(f"You've reached the limit of {s.user_requests_per_minute} model requests per minute; "
                             "try again in a minute.")


def workspace_budget_from(services) -> Callable[[str, str], Awaitable[float | None]]:
    """The monthly budget a workspace's admins set, read through `services.prefs` (the
    settings feature's lookup; None where none is set or the feature is absent)."""
    from bot.core.messages import Incoming

    async def read(platform: str, tenant: str) -> float | None:
        where = Incoming(platform=platform, tenant=tenant, channel="", user="", text="")
        return (await services.prefs.for_message(where)).monthly_budget_usd

    return read
