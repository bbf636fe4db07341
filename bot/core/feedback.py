"""👍/👎 on answers, stored with the answer's usage-ledger row, counted per pattern and
model. One rating per person and answer (changing your mind replaces it); a 👎 may get
a reason afterwards. `on_thumbs_down` hooks let caches drop an answer people reject."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from bot.core.answers import Press
from bot.core.metrics import METRICS

log = logging.getLogger(__name__)

MAX_REASON = 2_000


@dataclass(frozen=True)
class Rated:
    """The ledger row a rating was stored against (None: the answer made no model call)."""

    usage_id: int | None
    pattern: str
    model: str
    cache_hit: bool


@dataclass(frozen=True)
class FeedbackStats:
    pattern: str
    model: str
    up: int
    down: int
    reasons: int

    def as_json(self) -> dict:
        return {"pattern": self.pattern, "model": self.model, "up": self.up, "down": self.down, "reasons": self.reasons}


ThumbsDown = Callable[[str, Rated], Awaitable[None]]  # (answer id, its ledger row)


class FeedbackStore:
    def __init__(self, db, *, ledger=None) -> None:
        self.db = db
        self.ledger = ledger  # the answer's usage row may still be queued there: written first
        self.on_thumbs_down: list[ThumbsDown] = []  # e.g. the semantic cache evicting the answer

    async def rate(self, press: Press, rating: int) -> Rated:
        """Store (or replace) `press.user`'s rating of the answer, with its ledger row."""
        if self.ledger is not None:
            await self.ledger.flush(timeout=5.0)
        async with self.db.session.begin() as s:
            row = (await s.execute(text(
                "SELECT id, pattern, model, cache_hit FROM usage WHERE extra ? 'answer' AND extra->>'answer' = :a "
                "ORDER BY id DESC LIMIT 1"), {"a": press.answer})).first()
            rated = Rated(*row) if row else Rated(None, "", "", False)
            await s.execute(text(
                "INSERT INTO answer_feedback (answer, usage_id, pattern, model, cache_hit, platform, workspace, channel, "
                "user_id, rating) VALUES (:a, :u, :p, :m, :c, :pl, :w, :ch, :who, :r) "
                "ON CONFLICT (answer, user_id) DO UPDATE SET rating = EXCLUDED.rating, created_at = now()"),
                {"a": press.answer, "u": rated.usage_id, "p": rated.pattern[:32], "m": rated.model[:200],
                 "c": rated.cache_hit, "pl": press.platform[:32], "w": press.tenant[:200], "ch": press.channel[:200],
                 "who": press.user[:200], "r": rating})
        METRICS.feedback.labels(rated.pattern or "?", rated.model or "?", "up" if rating > 0 else "down").inc()
        if rating < 0:
            for hook in self.on_thumbs_down:
                try:
                    await hook(press.answer, rated)
                except Exception:
                    log.warning("a thumbs-down hook failed for answer %s", press.answer, exc_info=True)
        return rated

    async def reason(self, press: Press) -> bool:
        """Add the reason to `press.user`'s 👎 of the answer; False if there is none."""
        reason = (press.reason or "").strip()[:MAX_REASON]
        if not reason:
            return False
        async with self.db.session.begin() as s:
            done = await s.execute(text(
                "UPDATE answer_feedback SET reason = :r WHERE answer = :a AND user_id = :who AND rating = -1"),
                {"r": reason, "a": press.answer, "who": press.user[:200]})
        return bool(done.rowcount)

    async def stats(self, *, since: datetime | None = None, platform: str | None = None,
                    tenant: str | None = None) -> list[FeedbackStats]:
        """👍, 👎 and reasons given, per pattern and model; of one workspace when `tenant`
        is given (on `platform`)."""
        conds, params = [], {}
        if since is not None:
            conds.append("created_at >= :since")
            params["since"] = since
        if tenant is not None:
            conds.append("platform = :platform AND workspace = :tenant")
            params.update(platform=platform or "", tenant=tenant)
        where = ("WHERE " + " AND ".join(conds)) if conds else ""
        async with self.db.session() as s:
            rows = (await s.execute(text(
                "SELECT pattern, model, count(*) FILTER (WHERE rating = 1), count(*) FILTER (WHERE rating = -1), "
                f"count(reason) FROM answer_feedback {where} GROUP BY 1, 2 ORDER BY 1, 2"), params)).all()
        return [FeedbackStats(r[0] or "?", r[1] or "?", int(r[2]), int(r[3]), int(r[4])) for r in rows]


def format_feedback(stats: list[FeedbackStats]) -> str:
    """The feedback table, as monospace text."""
    rows = [("pattern", "model", "👍", "👎", "reasons")]
    rows += [(s.pattern, s.model, str(s.up), str(s.down), str(s.reasons)) for s in stats]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for n, r in enumerate(rows):
        lines.append("  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1])] +
                               [c.rjust(w) for c, w in zip(r[2:], widths[2:])]).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
