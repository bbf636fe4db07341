"""The dashboard's numbers: the usage ledger over a window, per time bucket and per
pattern, workspace or model. One grouped query when the page is opened (never on a
metrics scrape); at most `MAX_SERIES` groups, the rest summed as "other"."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import Float, cast, func, select

from bot.core.models import Usage

MAX_SERIES = 8
GROUPS = {"pattern": Usage.pattern, "workspace": Usage.workspace, "model": Usage.model}
WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


@dataclass
class Cell:
    """One group in one bucket."""

    requests: int = 0
    errors: int = 0
    cache_hits: int = 0
    cost: float = 0.0
    savings: float = 0.0  # cache hits times the average paid call of the same model in the window
    latency_ms: float = 0.0  # mean
    p95_ms: float = 0.0


@dataclass
class UsageView:
    by: str
    window: str
    bucket: str  # "hour" or "day"
    times: list[datetime] = field(default_factory=list)  # bucket starts, oldest first
    groups: list[str] = field(default_factory=list)  # most requests first
    cells: dict[tuple[datetime, str], Cell] = field(default_factory=dict)

    def cell(self, t: datetime, group: str) -> Cell | None:
        return self.cells.get((t, group))

    def totals(self, group: str) -> Cell:
        out = Cell()
        weighted = 0.0
        for (_, g), c in self.cells.items():
            if g == group:
                out.requests += c.requests
                out.errors += c.errors
                out.cache_hits += c.cache_hits
                out.cost += c.cost
                out.savings += c.savings
                weighted += c.latency_ms * c.requests
                out.p95_ms = max(out.p95_ms, c.p95_ms)
        out.latency_ms = weighted / out.requests if out.requests else 0.0
        return out

    def as_json(self) -> dict:
        """Aligned series for the charts: x in epoch seconds, one list per group and metric."""
        def series(metric: str, empty: float | None) -> dict[str, list]:
            return {g: [getattr(self.cells[(t, g)], metric) if (t, g) in self.cells else empty for t in self.times]
                    for g in self.groups}

        return {
            "by": self.by, "window": self.window, "bucket": self.bucket,
            "x": [int(t.timestamp()) for t in self.times],
            # nothing in a bucket is 0 requests and $0, but no latency at all (a gap in its line)
            "requests": series("requests", 0), "cost": series("cost", 0.0), "savings": series("savings", 0.0),
            "latency_ms": series("latency_ms", None),
        }


async def load(db, *, by: str, window: str, now: datetime | None = None) -> UsageView:
    column = GROUPS[by]
    span = WINDOWS[window]
    bucket = "hour" if span <= timedelta(hours=48) else "day"
    now = now or datetime.now(timezone.utc)
    since = now - span
    t = func.date_trunc(bucket, Usage.created_at, "UTC").label("t")  # buckets in UTC, whatever the session zone
    q = (
        select(
            t, column.label("g"), Usage.model,
            func.count(), func.count().filter(Usage.outcome != "ok"), func.count().filter(Usage.cache_hit),
            func.coalesce(func.sum(Usage.cost_usd), 0),
            func.coalesce(func.avg(cast(Usage.latency_ms, Float)), 0),
            func.coalesce(func.percentile_cont(0.95).within_group(cast(Usage.latency_ms, Float)), 0),
        )
        .where(Usage.created_at >= since)
        .group_by(t, column, Usage.model)
    )
    async with db.session() as s:
        rows = (await s.execute(q)).all()

    # what a call of each model cost on average when it was paid for: the price of a cache hit avoided
    paid: dict[str, list[Decimal | int]] = defaultdict(lambda: [Decimal(0), 0])
    for _, _, model, n, _, hits, cost, _, _ in rows:
        paid[model][0] += Decimal(cost)
        paid[model][1] += n - hits
    avg_paid = {m: float(c / k) if k else 0.0 for m, (c, k) in paid.items()}

    per_group: dict[str, int] = defaultdict(int)
    for _, g, _, n, *_ in rows:
        per_group[g or "-"] += n
    ranked = sorted(per_group, key=lambda g: (-per_group[g], g))
    keep = set(ranked[:MAX_SERIES])
    out = UsageView(by=by, window=window, bucket=bucket)
    for when, g, model, n, errors, hits, cost, avg_ms, p95_ms in rows:
        name = (g or "-") if (g or "-") in keep else "other"
        cell = out.cells.setdefault((when, name), Cell())
        total = cell.requests + n
        cell.latency_ms = (cell.latency_ms * cell.requests + float(avg_ms) * n) / total if total else 0.0
        cell.requests = total
        cell.errors += errors
        cell.cache_hits += hits
        cell.cost += float(cost)
        cell.savings += hits * avg_paid.get(model, 0.0)
        cell.p95_ms = max(cell.p95_ms, float(p95_ms))
    out.groups = [g for g in ranked if g in keep] + (["other"] if len(ranked) > MAX_SERIES else [])
    out.times = _buckets(since, now, bucket)
    return out


def _buckets(since: datetime, now: datetime, bucket: str) -> list[datetime]:
    """Every bucket start in the window (empty buckets too, so the time axis is even)."""
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    start = since.replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        start = start.replace(hour=0)
    out = []
    while start <= now:
        out.append(start)
        start += step
    return out
