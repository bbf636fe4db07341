"""Settings of the cost controls: the semantic answer cache and the spend limits."""
from __future__ import annotations

from typing import ClassVar

from bot.core.settings import Section, env


class CostSettings(Section):
    title: ClassVar[str] = "Core: answer cache and budgets"

    semantic_cache: bool = env(
        "AIBOT_SEMANTIC_CACHE", True,
        description="answer standalone questions (chat, `/ask`) and repeated `/summarize` texts from the "
        "semantic answer cache, per workspace",
    )
    semantic_threshold: float = env(
        "AIBOT_SEMANTIC_THRESHOLD", 0.89, gt=0, le=1,
        description="cosine similarity at or above which a cached answer is reused (chosen on the labelled "
        "set in `bench/semantic_eval.py`; key terms must match too)",
    )
    semantic_ttl_seconds: int = env(
        "AIBOT_SEMANTIC_CACHE_TTL", 24 * 3600, ge=0,
        description="seconds a semantically cached answer lives (0: the semantic cache is off)",
    )
    workspace_daily_usd: float = env(
        "AIBOT_BUDGET_WORKSPACE_DAILY_USD", 0.0, ge=0,
        description="model spend per workspace per UTC day; over it the bot says so and calls no model (0: no limit)",
    )
    workspace_monthly_usd: float = env(
        "AIBOT_BUDGET_WORKSPACE_MONTHLY_USD", 0.0, ge=0, description="the same per UTC calendar month (0: no limit)"
    )
    user_daily_usd: float = env(
        "AIBOT_BUDGET_USER_DAILY_USD", 0.0, ge=0, description="model spend per user per UTC day (0: no limit)"
    )
    user_monthly_usd: float = env(
        "AIBOT_BUDGET_USER_MONTHLY_USD", 0.0, ge=0, description="model spend per user per UTC month (0: no limit)"
    )
    user_requests_per_minute: int = env(
        "AIBOT_USER_REQUESTS_PER_MINUTE", 0, ge=0,
        description="model calls one user may cause per minute (cache hits are free; 0: no limit)",
    )

    @property
    def any_limit(self) -> bool:
        return any((self.workspace_daily_usd, self.workspace_monthly_usd, self.user_daily_usd,
                    self.user_monthly_usd, self.user_requests_per_minute))
