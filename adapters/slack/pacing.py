"""Per-workspace write budget: Slack's rate limits are per method and workspace, shared by
every answer streaming at once. Two mechanisms:

- each answer's progressive-update interval grows with the number of answers in flight,
  so the sum of their updates stays under the budget (`Workspace.interval`);
- every write call takes a slot from `Budget` first, at the method's documented tier
  (`chat.update` Tier 3 ≈ 50/min, `chat.startStream`/`chat.stopStream` Tier 2 ≈ 20/min,
  `chat.appendStream` Tier 4 ≈ 100/min; `chat.postMessage` ≈ 1/s per channel). A call
  that fails has spent its slot all the same, so a refused edit cannot be retried at
  once; a 429 that still comes is retried by slack_sdk's
  `AsyncRateLimitErrorRetryHandler` after its Retry-After.

Interactive writes go before bulk ones: a bulk write (a digest, the reply to a file being
added) takes a slot only while the method's bucket is less than half full, and otherwise
waits until it is, so the answers streaming at the same time always find room.

Slack counts these limits per workspace, not per process: with several processes serving
one app (`aibot run --workers N`, replicas, several Socket Mode connections) each takes
its `share` of the rate of every bucket of a workspace: 1/N, N the live processes on the
same database writing to that workspace lately (`bot.core.peers`, re-read every
heartbeat), so a process writing there alone (the others idle there, stopped, or crashed
and their lease run out) takes the whole rate. The burst is split evenly between all the
processes serving Slack (`burst_share`): it is spent in the first seconds of a rush, before
a heartbeat could tell the others, so two processes starting to write to a workspace at
the same moment never take a burst each.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.core.metrics import METRICS
from bot.core.priority import is_bulk

# Calls per minute we allow ourselves: Slack's published tiers with ~10% headroom
EDIT_BUDGET = 45.0  # chat.update, Tier 3 (50+/min)
APPEND_BUDGET = 90.0  # chat.appendStream, Tier 4 (100+/min)


# Calls per minute by Slack's documented tier (Tier 2: 20+, Tier 3: 50+, Tier 4: 100+),
# with ~10% headroom; chat.postMessage is "special": about one per second per channel.
TIERS = {
    "chat.update": 45.0,
    "chat.startStream": 18.0,
    "chat.stopStream": 18.0,
    "chat.appendStream": 90.0,
    "chat.postEphemeral": 90.0,
    "chat.delete": 45.0,
    "assistant.threads.setStatus": 45.0,
    "reactions.add": 45.0,  # Tier 3: the 🛑 under a streaming answer
    "reactions.remove": 45.0,
}
PER_CHANNEL = {"chat.postMessage": 54.0}
BURST_SECONDS = 20.0  # calls may bunch up to this many seconds' worth of the rate
# bulk writes (digests, files being added: `bot.core.priority`) may use only this share of
# the burst; the rest is headroom that only interactive writes (answers) may take
BULK_BURST_SHARE = 0.5
# when a new chat.update would wait longer than this, answers are posted whole at the end
# (one chat.postMessage, limited per channel) instead of posted early and edited
WHOLE_AFTER_SECONDS = 5.0


class Budget:
    """Slots for Slack write calls, per method (and per channel for chat.postMessage),
    spaced by a generic cell-rate algorithm: a short burst, then the tier's rate. Bulk
    calls see a smaller burst (`BULK_BURST_SHARE`), so interactive calls go first."""

    def __init__(self, *, tiers: dict[str, float] = TIERS, per_channel: dict[str, float] = PER_CHANNEL,
                 burst: float = BURST_SECONDS, share: Callable[[], float] = lambda: 1.0,
                 burst_share: Callable[[], float] = lambda: 1.0) -> None:
        self.tiers, self.per_channel = tiers, per_channel
        self.burst = burst
        self.share = share  # this process's part of each rate (1/N of N processes writing to the workspace)
        self.burst_share = burst_share  # and of each burst (1/N of N processes serving Slack)
        self._due: dict[tuple[str, str], float] = {}  # theoretical arrival time per bucket
        self.last_used = float("-inf")  # when a write last asked for a slot (monotonic; bot.core.peers)
        self.waited = 0.0  # seconds spent waiting for slots (for tests and logs)

    def _bucket(self, method: str, channel: str) -> tuple[tuple[str, str], float] | None:
        if method in self.per_channel:
            return (method, channel), self.per_channel[method]
        if method in self.tiers:
            return (method, ""), self.tiers[method]
        return None

    def _tolerance(self, share: float) -> float:
        """How far (s) a bucket's next slot may run ahead of now: the burst, in seconds of
        this process's rate, sized to its share of the burst's calls."""
        return self.burst * self.burst_share() / share

    def backlog(self, method: str, *, channel: str = "") -> float:
        """Seconds an interactive `method` call asked for now would wait for its slot."""
        found = self._bucket(method, channel)
        if found is None:
            return 0.0
        now = time.monotonic()
        return max(0.0, max(self._due.get(found[0], now), now) - self._tolerance(self.share()) - now)

    async def take(self, method: str, *, channel: str = "", max_wait: float | None = None,
                   bulk: bool | None = None) -> bool:
        """Wait for a slot for one `method` call; False (and no slot taken) if that would
        take longer than `max_wait` seconds. `bulk` (default: inside
        `bot.core.priority.bulk`) waits until the bucket has room beside interactive calls."""
        found = self._bucket(method, channel)
        if found is None:
            return True
        key, per_minute = found
        self.last_used = time.monotonic()
        share = self.share()
        interval = 60.0 / (per_minute * share)
        bulk = is_bulk() if bulk is None else bulk
        burst = self._tolerance(share) * (BULK_BURST_SHARE if bulk else 1.0)
        while True:
            now = time.monotonic()
            due = max(self._due.get(key, now), now)
            wait = max(0.0, due - burst - now)
            if max_wait is not None and wait > max_wait:
                return False
            if not bulk or wait == 0:
                break
            # bulk: reserve nothing while waiting, so interactive calls arriving meanwhile go first
            self._waiting(method, wait)
            await asyncio.sleep(wait)
            if max_wait is not None:
                max_wait -= wait
        self._due[key] = due + interval
        if wait > 0:
            self._waiting(method, wait)
            await asyncio.sleep(wait)
        return True

    def _waiting(self, method: str, seconds: float) -> None:
        self.waited += seconds
        METRICS.platform_budget_wait.labels("slack", method).inc(seconds)


@dataclass
class Workspace:
    """Load and capabilities of one Slack workspace, as this process sees them."""

    team: str
    in_flight: int = 0  # messages being answered right now
    can_stream: bool = True  # False once chat.startStream was refused here
    can_set_status: bool = True  # False once assistant.threads.setStatus was refused here
    budget: Budget = field(default_factory=Budget)

    def interval(self, *, native: bool, base: float) -> float:
        budget = (APPEND_BUDGET if native else EDIT_BUDGET) * self.budget.share()
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

    @property
    def whole_only(self) -> bool:
        """The workspace's edits are backed up (more answers at once than chat.update's
        Tier 3 can carry): an answer starting now is posted once, whole, at the end."""
        return self.workspace.budget.backlog("chat.update") > WHOLE_AFTER_SECONDS
