"""The usage ledger: one row per model call, and the per-pattern stats table built from it."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, insert, select

from bot.core.messages import CallInfo
from bot.core.models import Usage

log = logging.getLogger(__name__)


@dataclass
class UsageRecord:
    call: CallInfo
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    cost_usd: Decimal = Decimal(0)
    cache_hit: bool = False
    cached_tokens: int = 0  # prompt tokens the provider served from its prompt cache
    saved_usd: Decimal = Decimal(0)  # a cache hit: what the model call would have cost
    outcome: str = "ok"
    streamed: bool = False
    extra: dict | None = None


@dataclass
class PatternStats:
    pattern: str
    requests: int
    errors: int
    cache_hits: int
    avg_latency_ms: float
    p95_latency_ms: float
    avg_ttft_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal
    extra: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        d = asdict(self)
        d["cost_usd"] = float(self.cost_usd)
        return d


class Ledger:
    def __init__(self, db) -> None:
        self.db = db

    async def record(self, rec: UsageRecord) -> None:
        """Write one row. A ledger failure is logged, never allowed to break a reply."""
        row = {
            "pattern": rec.call.pattern,
            "model": rec.model[:200],
            "prompt_tokens": int(rec.prompt_tokens),
            "completion_tokens": int(rec.completion_tokens),
            "latency_ms": round(rec.latency_ms, 3),
            "ttft_ms": None if rec.ttft_ms is None else round(rec.ttft_ms, 3),
            "cost_usd": rec.cost_usd,
            "cache_hit": rec.cache_hit,
            "cached_tokens": int(rec.cached_tokens),
            "saved_usd": rec.saved_usd,
            "outcome": rec.outcome,
            "streamed": rec.streamed,
            "platform": rec.call.platform[:32],
            "workspace": rec.call.tenant[:200],
            "channel": rec.call.channel[:200],
            "user_id": rec.call.user[:200],
            "extra": rec.extra,
        }
        try:
            async with self.db.session.begin() as s:
                await s.execute(insert(Usage).values(**row))
        except Exception:
            log.exception("could not write the usage ledger row for pattern %s", rec.call.pattern)

    async def stats(self, *, since: datetime | None = None) -> list[PatternStats]:
        """Per pattern: requests, errors, cache hits, avg/p95 latency, avg TTFT, tokens, cost."""
        q = select(
            Usage.pattern,
            func.count(),
            func.count().filter(Usage.outcome != "ok"),
            func.count().filter(Usage.cache_hit),
            func.coalesce(func.avg(Usage.latency_ms), 0),
            func.coalesce(func.percentile_cont(0.95).within_group(Usage.latency_ms), 0),
            func.avg(Usage.ttft_ms),
            func.coalesce(func.sum(Usage.prompt_tokens), 0),
            func.coalesce(func.sum(Usage.completion_tokens), 0),
            func.coalesce(func.sum(Usage.cost_usd), 0),
        ).group_by(Usage.pattern).order_by(Usage.pattern)
        if since is not None:
            q = q.where(Usage.created_at >= since)
        async with self.db.session() as s:
            rows = (await s.execute(q)).all()
        return [
            PatternStats(
                pattern=r[0],
                requests=r[1],
                errors=r[2],
                cache_hits=r[3],
                avg_latency_ms=float(r[4]),
                p95_latency_ms=float(r[5]),
                avg_ttft_ms=None if r[6] is None else float(r[6]),
                prompt_tokens=int(r[7]),
                completion_tokens=int(r[8]),
                cost_usd=Decimal(r[9]),
            )
            for r in rows
        ]


def format_stats(stats: list[PatternStats]) -> str:
    """The production-stats table, as monospace text."""
    header = ("pattern", "requests", "errors", "cached", "avg ms", "p95 ms", "ttft ms", "tokens in", "tokens out", "cost $")
    rows = [header]
    for s in stats:
        rows.append(
            (
                s.pattern,
                str(s.requests),
                str(s.errors),
                str(s.cache_hits),
                f"{s.avg_latency_ms:.0f}",
                f"{s.p95_latency_ms:.0f}",
                "-" if s.avg_ttft_ms is None else f"{s.avg_ttft_ms:.0f}",
                str(s.prompt_tokens),
                str(s.completion_tokens),
                f"{s.cost_usd:.4f}",
            )
        )
    if len(stats) > 1:
        rows.append(
            (
                "total",
                str(sum(s.requests for s in stats)),
                str(sum(s.errors for s in stats)),
                str(sum(s.cache_hits for s in stats)),
                "",
                "",
                "",
                str(sum(s.prompt_tokens for s in stats)),
                str(sum(s.completion_tokens for s in stats)),
                f"{sum((s.cost_usd for s in stats), Decimal(0)):.4f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for n, r in enumerate(rows):
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)

