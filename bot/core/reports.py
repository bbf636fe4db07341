"""Cost reports from the usage ledger: requests, latency, tokens (provider-cached ones
too), cost and what the caches saved, grouped by pattern, workspace, channel, user or
model over a window, optionally for one workspace only (`/ai-stats` shows a workspace
its own figures and nobody else's)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy import func, select

from bot.core.models import Usage

Dimension = Literal["pattern", "workspace", "channel", "user", "model"]
DIMENSIONS: tuple[str, ...] = ("pattern", "workspace", "channel", "user", "model")
_COLUMNS = {"pattern": Usage.pattern, "workspace": Usage.workspace, "channel": Usage.channel,
            "user": Usage.user_id, "model": Usage.model}


@dataclass
class ReportRow:
    group: str
    requests: int
    errors: int
    cache_hits: int
    avg_latency_ms: float
    p95_latency_ms: float
    avg_ttft_ms: float | None
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost_usd: Decimal
    saved_usd: Decimal

    def as_json(self, by: str) -> dict:
        d = asdict(self)
        d[by] = d.pop("group")
        d["cost_usd"] = float(self.cost_usd)
        d["saved_usd"] = float(self.saved_usd)
        return d


async def usage_report(db, *, by: str = "pattern", since: datetime | None = None,
                       workspace: str | None = None, platform: str | None = None,
                       ledger=None) -> list[ReportRow]:
    """One row per value of `by`, most expensive first; only `workspace`'s rows if given
    (on `platform`, if given). Rows still queued in `ledger` are written first."""
    if ledger is not None:
        await ledger.flush(timeout=5.0)
    col = _COLUMNS[by]
    q = select(
        col,
        func.count(),
        func.count().filter(Usage.outcome != "ok"),
        func.count().filter(Usage.cache_hit),
        func.coalesce(func.avg(Usage.latency_ms), 0),
        func.coalesce(func.percentile_cont(0.95).within_group(Usage.latency_ms), 0),
        func.avg(Usage.ttft_ms),
        func.coalesce(func.sum(Usage.prompt_tokens), 0),
        func.coalesce(func.sum(Usage.cached_tokens), 0),
        func.coalesce(func.sum(Usage.completion_tokens), 0),
        func.coalesce(func.sum(Usage.cost_usd), 0),
        func.coalesce(func.sum(Usage.saved_usd), 0),
    ).group_by(col).order_by(func.sum(Usage.cost_usd).desc(), col)
    if since is not None:
        q = q.where(Usage.created_at >= since)
    if workspace is not None:
        q = q.where(Usage.workspace == workspace)
    if platform is not None:
        q = q.where(Usage.platform == platform)
    async with db.session() as s:
        rows = (await s.execute(q)).all()
    return [
        ReportRow(
            group=r[0] or "-", requests=r[1], errors=r[2], cache_hits=r[3], avg_latency_ms=float(r[4]),
            p95_latency_ms=float(r[5]), avg_ttft_ms=None if r[6] is None else float(r[6]),
            prompt_tokens=int(r[7]), cached_tokens=int(r[8]), completion_tokens=int(r[9]),
            cost_usd=Decimal(r[10]), saved_usd=Decimal(r[11]),
        )
        for r in rows
    ]


_HEADER = ("requests", "errors", "cached", "avg ms", "p95 ms", "ttft ms", "tokens in", "prov-cached in",
           "tokens out", "cost $", "saved $")


def format_report(rows: list[ReportRow], *, by: str = "pattern") -> str:
    """The report as a monospace table, with a total line and the cache savings."""
    table = [(by, *_HEADER)]
    for r in rows:
        table.append((
            r.group[:40], str(r.requests), str(r.errors), str(r.cache_hits), f"{r.avg_latency_ms:.0f}",
            f"{r.p95_latency_ms:.0f}", "-" if r.avg_ttft_ms is None else f"{r.avg_ttft_ms:.0f}",
            str(r.prompt_tokens), str(r.cached_tokens), str(r.completion_tokens), f"{r.cost_usd:.4f}",
            f"{r.saved_usd:.4f}",
        ))
    cost = sum((r.cost_usd for r in rows), Decimal(0))
    saved = sum((r.saved_usd for r in rows), Decimal(0))
    if len(rows) > 1:
        table.append((
            "total", str(sum(r.requests for r in rows)), str(sum(r.errors for r in rows)),
            str(sum(r.cache_hits for r in rows)), "", "", "", str(sum(r.prompt_tokens for r in rows)),
            str(sum(r.cached_tokens for r in rows)), str(sum(r.completion_tokens for r in rows)),
            f"{cost:.4f}", f"{saved:.4f}",
        ))
    widths = [max(len(t[i]) for t in table) for i in range(len(table[0]))]
    lines = []
    for n, t in enumerate(table):
        lines.append("  ".join([t[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(t[1:], widths[1:])]).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    hits = sum(r.cache_hits for r in rows)
    without = cost + saved
    share = f" ({saved / without:.0%} of ${without:.4f})" if without > 0 else ""
    lines.append(f"\nCache hits: {hits}; they saved ${saved:.4f}{share}.")
    return "\n".join(lines)
