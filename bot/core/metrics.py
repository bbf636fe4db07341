"""Prometheus metrics (prometheus-client): every instrument the bot exports, in one place.

Each process counts what it does itself (answers, model calls, platform API calls, cache
lookups); `/metrics` reports this process's values, never a query over the usage ledger,
so a scrape costs the same on day one and day 1,000 and each replica reports its own
share (Prometheus sums them). When several worker processes share one port, start them
with `PROMETHEUS_MULTIPROC_DIR` set to an empty directory: every process then writes its
values there and any worker's `/metrics` reports the sum (prometheus-client's
multi-process mode).

Labels are bounded: platform, route, pattern, model, API method (templated, ids
removed), cache kind, outcome; never a user, channel or workspace id.

To add an instrument, add it to `Metrics.__init__` with its `# HELP` text, and record it
where the event happens through `METRICS` (the process's one instance: a module global
on purpose, as every prometheus-client program has, since a counter is per process).
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Awaitable, Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import gc_collector, platform_collector, process_collector

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# seconds: answers and model calls run from tens of milliseconds (cache) to minutes (agent)
SLOW = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120, 300)
FAST = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30)

Refresh = Callable[[], Awaitable[None]]


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    """The bot's instruments on one registry (keyword-only: `Metrics(registry=...)`)."""

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry or CollectorRegistry(auto_describe=True)
        if multiprocess_dir() is None and registry is None:  # in multi-process mode these do not work
            process_collector.ProcessCollector(registry=r)
            platform_collector.PlatformCollector(registry=r)
            gc_collector.GCCollector(registry=r)
        self._refreshers: list[Refresh] = []

        # --- answers (the router) ---------------------------------------------------
        self.answers = Counter(
            "aibot_answers", "Messages handled by the router, by platform, route and outcome.",
            ["platform", "route", "outcome"], registry=r)
        self.answer_seconds = Histogram(
            "aibot_answer_seconds", "From the router taking a message to its reply being delivered.",
            ["platform", "route"], buckets=SLOW, registry=r)
        self.first_visible_seconds = Histogram(
            "aibot_first_visible_seconds", "From the router taking a message to the first visible text of a streamed answer.",
            ["platform"], buckets=FAST, registry=r)
        self.in_flight = Gauge(
            "aibot_answers_in_flight", "Messages being handled right now.", ["platform"],
            multiprocess_mode="livesum", registry=r)
        self.queue_depth = Gauge(
            "aibot_queue_depth", "Work waiting: `router` = messages waiting for their conversation's turn, "
            "`batch` = bulk-job items not yet done.", ["queue"], multiprocess_mode="livesum", registry=r)

        # --- overload (bot.core.load: the in-flight limit and what waited for it) ---
        self.in_flight_limit = Gauge(
            "aibot_in_flight_limit", "The in-flight limit of a process (AIBOT_MAX_IN_FLIGHT).",
            multiprocess_mode="livemax", registry=r)
        self.waiting = Gauge(
            "aibot_waiting", "Messages waiting for an in-flight slot right now (backpressure).",
            multiprocess_mode="livesum", registry=r)
        self.overload = {
            name: Counter(f"aibot_{name}", text, registry=r) for name, text in (
                ("queued", "Messages that had to wait for an in-flight slot."),
                ("queued_notices", "Messages that waited long enough to be shown a \"queued\" status."),
                ("waited_seconds", "Seconds messages spent waiting for an in-flight slot, summed."),
                ("ledger_waits", "Usage rows that waited because the ledger's write queue was full."),
                ("ledger_retries", "Ledger batch writes retried because the database refused them."),
            )}
        self.ledger_backlog = Gauge(
            "aibot_ledger_backlog", "Usage rows recorded but not yet written to the database.",
            multiprocess_mode="livesum", registry=r)

        # --- model calls (bot.core.llm, one place for every pattern) ----------------
        self.model_calls = Counter(
            "aibot_model_calls", "Model calls, by pattern, model and outcome (ok, rate_limited, timeout, cut, ...).",
            ["pattern", "model", "outcome"], registry=r)
        self.model_seconds = Histogram(
            "aibot_model_seconds", "Model call latency (cache hits included, they are fast).",
            ["pattern", "model"], buckets=SLOW, registry=r)
        self.model_ttft_seconds = Histogram(
            "aibot_model_first_token_seconds", "Time to the first token of a streamed model call.",
            ["pattern", "model"], buckets=FAST, registry=r)
        self.model_tokens = Counter(
            "aibot_model_tokens", "Tokens, by pattern, model and kind (prompt, completion).",
            ["pattern", "model", "kind"], registry=r)
        self.model_cost = Counter(
            "aibot_model_cost_usd", "Money spent on model calls (list prices, AIBOT_PRICES).",
            ["pattern", "model"], registry=r)

        # --- caches -----------------------------------------------------------------
        self.cache_lookups = Counter(
            "aibot_cache_lookups", "Cache lookups by kind (exact, ...) and result (hit, miss); "
            "hit ratio = rate(hit) / rate(all).", ["kind", "result"], registry=r)

        # --- feedback on answers (👍/👎 buttons) --------------------------------------
        self.feedback = Counter(
            "aibot_feedback", "Ratings given to answers, by the answer's pattern and model and the rating (up, down).",
            ["pattern", "model", "rating"], registry=r)

        # --- platform APIs (adapters) -----------------------------------------------
        self.platform_calls = Counter(
            "aibot_platform_api_calls", "Calls to a platform's Web API, by platform, method and HTTP status class.",
            ["platform", "method", "status"], registry=r)
        self.platform_rate_limited = Counter(
            "aibot_platform_api_rate_limited", "Platform API calls answered 429 (rate limited), by method.",
            ["platform", "method"], registry=r)
        self.platform_budget_wait = Counter(
            "aibot_platform_budget_wait_seconds", "Seconds platform writes waited for a slot of a workspace's "
            "rate-limit budget (Slack's tiers, split between the processes writing there), by method.",
            ["platform", "method"], registry=r)
        self.processes = Gauge(
            "aibot_processes", "Live bot processes serving a platform on this database (the process registry).",
            ["platform"], multiprocess_mode="livemax", registry=r)

        # --- storage ----------------------------------------------------------------
        self.db_pool = Gauge(
            "aibot_db_pool_connections", "Database connections: `in_use` checked out, `idle` in the pool, "
            "`overflow` beyond the pool size.", ["state"], multiprocess_mode="livesum", registry=r)

    # --- recording helpers ----------------------------------------------------------

    def model_call(self, *, pattern: str, model: str, outcome: str, seconds: float, ttft: float | None,
                   prompt_tokens: int, completion_tokens: int, cost_usd: float, cache_hit: bool) -> None:
        """One model call, as the usage ledger records it."""
        self.model_calls.labels(pattern, model, outcome).inc()
        self.model_seconds.labels(pattern, model).observe(seconds)
        if ttft is not None:
            self.model_ttft_seconds.labels(pattern, model).observe(ttft)
        if prompt_tokens:
            self.model_tokens.labels(pattern, model, "prompt").inc(prompt_tokens)
        if completion_tokens:
            self.model_tokens.labels(pattern, model, "completion").inc(completion_tokens)
        if cost_usd:
            self.model_cost.labels(pattern, model).inc(cost_usd)

    def cache_lookup(self, kind: str, *, hit: bool) -> None:
        self.cache_lookups.labels(kind, "hit" if hit else "miss").inc()

    def platform_call(self, platform: str, method: str, status: int | None) -> None:
        """One platform API response (`status` None: no response, a connection error)."""
        klass = "error" if status is None else "429" if status == 429 else f"{status // 100}xx"
        self.platform_calls.labels(platform, method, klass).inc()
        if status == 429:
            self.platform_rate_limited.labels(platform, method).inc()

    # --- exposition -----------------------------------------------------------------

    def on_scrape(self, refresh: Refresh) -> None:
        """Run `refresh` (set a gauge from something cheap: a pool's counters, a count on an
        index) before each scrape."""
        self._refreshers.append(refresh)

    def forget(self, refresh: Refresh) -> None:
        if refresh in self._refreshers:
            self._refreshers.remove(refresh)

    async def exposition(self) -> bytes:
        """The Prometheus text format: this process's registry, or every process's
        values in multi-process mode."""
        for refresh in list(self._refreshers):
            try:
                await refresh()
            except Exception:
                log.warning("a metrics refresh failed", exc_info=True)
        if multiprocess_dir() is not None:
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            return generate_latest(merged)
        return generate_latest(self.registry)

    @staticmethod
    def process_exited(pid: int | None = None) -> None:
        """In multi-process mode, drop a finished process's live gauges."""
        if multiprocess_dir() is not None:
            multiprocess.mark_process_dead(pid or os.getpid())


METRICS = Metrics()


# --------------------------------------------------------------------------- helpers

# a path segment kept as it is: a word (`channels`, `chat.postMessage`, `@original`,
# `oauth2`); anything else (ids, tokens, file names with digits) becomes `:id`
_WORD = re.compile(r"^[A-Za-z@_][A-Za-z_.@-]{0,39}\d?$")


def api_method(path: str, *, prefix: str = "") -> str:
    """A bounded label for an API path: the part after `prefix`, every segment that is
    not a plain word replaced by `:id` (`/api/v10/channels/123/messages` ->
    `channels/:id/messages`)."""
    if prefix and prefix in path:
        path = path.split(prefix, 1)[1]
    parts = [p if _WORD.match(p) else ":id" for p in path.strip("/").split("/") if p]
    return "/".join(parts[:6])[:100] or "/"
