"""Agent runs read back from the usage ledger: every model call of a run carries
`extra = {"agent_run": id, "step": n}` (and `limit` on the wrap-up call after a limit),
so steps per run are `max(step)` over its rows; no table of its own is needed."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Integer, func, select

from bot.core.models import Usage
from patterns.agent.loop import PATTERN


@dataclass
class AgentRun:
    run: str
    started: datetime
    steps: int  # model calls of the run (the last one answered, or hit a limit)
    tokens: int
    cost_usd: Decimal
    limit: str | None

    def as_json(self) -> dict:
        d = asdict(self)
        d["started"] = self.started.isoformat()
        d["cost_usd"] = float(self.cost_usd)
        return d


async def recent_runs(db, *, limit: int = 20) -> list[AgentRun]:
    run_id = Usage.extra["agent_run"].astext
    q = (
        select(
            run_id,
            func.min(Usage.created_at),
            func.max(Usage.extra["step"].astext.cast(Integer)),
            func.coalesce(func.sum(Usage.prompt_tokens + Usage.completion_tokens), 0),
            func.coalesce(func.sum(Usage.cost_usd), 0),
            func.max(Usage.extra["limit"].astext),
        )
        .where(Usage.pattern == PATTERN, run_id.is_not(None))
        .group_by(run_id)
        .order_by(func.min(Usage.created_at).desc())
        .limit(limit)
    )
    async with db.session() as s:
        rows = (await s.execute(q)).all()
    return [AgentRun(r[0], r[1], int(r[2] or 0), int(r[3]), Decimal(r[4]), r[5]) for r in rows]
