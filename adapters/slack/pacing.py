"""Per-workspace write budget: Slack's rate limits are per workspace and shared by every
answer streaming at once (`chat.update` Tier 3 ≈ 50/min, `chat.appendStream` Tier 4
≈ 100/min). Each answer's progressive-update interval grows with the number of answers
in flight so the sum stays under the budget; final updates always go, and a 429 that
still comes is retried by slack_sdk's `AsyncRateLimitErrorRetryHandler` after its
Retry-After."""
from __future__ import annotations

from dataclasses import dataclass

# Calls per minute we allow ourselves: Slack's published tiers with ~10% headroom
EDIT_BUDGET = 45.0  # chat.update, Tier 3 (50+/min)
APPEND_BUDGET = 90.0  # chat.appendStream, Tier 4 (100+/min)


@dataclass
class Workspace:
    """Load and capabilities of one Slack workspace, as this process sees them."""

    team: str
    in_flight: int = 0  # messages being answered right now
    can_stream: bool = True  # False once chat.startStream was refused here
    can_set_status: bool = True  # False once assistant.threads.setStatus was refused here

    def interval(self, *, native: bool, base: float) -> float:
        budget = APPEND_BUDGET if native else EDIT_BUDGET
        return max(base, max(1, self.in_flight) * 60.0 / budget)


class AdaptiveLimits:
    """`bot.core.surface.Limits` for one Slack conversation; `update_interval` is computed at
    each read from the workspace's current load."""

    def __init__(self, workspace: Workspace, *, max_chars: int, base_interval: float, max_updates: int = 60) -> None:
        self.workspace = workspace
        self.max_chars = max_chars
        self.base_interval = base_interval
        self.max_updates = max_updates
        self.native = False  # set while this conversation streams with chat.*Stream

    @property
    def update_interval(self) -> float:
        return self.workspace.interval(native=self.native, base=self.base_interval)
