"""One call's bookkeeping, shared by `complete` and the stream: its start time, its
cache entry, its token counts (the server's, or estimated) and its one ledger row."""
from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sized
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.core import tokens
from bot.core.answers import FRESH
from bot.core.cache import Cache, Cached, cache_key
from bot.core.llm.types import ChatOptions, Completion
from bot.core.messages import CallInfo
from bot.core.metrics import METRICS

if TYPE_CHECKING:
    from openai.types import CompletionUsage

Record = Callable[..., Awaitable[None]]  # (call, model, started, *, ttft, **row): writes the ledger row

# outcomes in which the model generated tokens, so the provider bills them
PAID = ("ok", "cut", "cancelled")


@dataclass(frozen=True)
class Tokens:
    prompt: int
    completion: int
    estimated: bool  # the server sent no usage; counted here with tiktoken
    cached: int = 0  # prompt tokens the provider read from its prompt cache (billed at the cached rate)


def count_tokens(usage: CompletionUsage | None, messages: list[dict], text: str, outcome: str = "ok") -> Tokens:
    """The server's usage, or an estimate: the prompt only when it was paid for."""
    if usage is not None:
        return Tokens(usage.prompt_tokens, usage.completion_tokens, estimated=False, cached=cached_tokens(usage))
    prompt = _estimate_prompt(messages) if outcome in PAID else 0
    completion = tokens.count(text)
    return Tokens(prompt, completion, estimated=bool(prompt or completion))


def tenant_key(call: CallInfo, model: str, messages: list[dict], options: ChatOptions) -> str:
    """The exact-cache key: the prompt, model and options, within the asker's workspace
    (a workspace never gets an answer cached for another)."""
    return cache_key(model, messages, options.model_dump(exclude_none=True),
                     scope=f"{call.platform}:{call.tenant}" if call.tenant else "")


def cached_tokens(usage: CompletionUsage) -> int:
    """`usage.prompt_tokens_details.cached_tokens`, 0 where the server does not say."""
    details = getattr(usage, "prompt_tokens_details", None)
    return int(getattr(details, "cached_tokens", None) or 0)


class CallBook:
    """One call's bookkeeping, shared by `complete` and `stream`: when it started, its
    cache entry (looked up before the call, written after a reusable answer) and its one
    ledger row."""

    def __init__(
        self, *, cache: Cache | None, record: Record, call: CallInfo, messages: list[dict], options: ChatOptions,
        params: dict, use_cache: bool, extra: dict | None,
    ) -> None:
        self.cache = cache
        self._record = record
        self.call = call
        self.model: str = params["model"]
        self.extra = extra
        self.started = time.perf_counter()
        self.key: str | None = None
        self.skip_lookup = False  # a fresh answer was asked for: call the model, then replace the entry
        if use_cache and cache is not None and not options.tools:
            self.key = tenant_key(call, self.model, messages, options)

    async def cached(self) -> Cached | None:
        if self.key is None or self.skip_lookup or FRESH.get():  # a fresh answer (--fresh, Regenerate)
            return None
        hit = await self.cache.get(self.key)
        METRICS.cache_lookup("exact", hit=hit is not None)
        return hit

    async def store(self, text: str, tool_calls: Sized, used: Tokens) -> None:
        """Cache a plain text answer; one with tool calls depends on what the tools return."""
        if self.key is not None and text and not tool_calls:
            await self.cache.put(self.key, self.model, text, used.prompt, used.completion)

    async def record(self, *, ttft: float | None = None, **row: Any) -> None:
        row.setdefault("extra", self.extra)
        await self._record(self.call, self.model, self.started, ttft=ttft, **row)

    async def record_tokens(self, used: Tokens, *, outcome: str = "ok", ttft: float | None = None, streamed: bool = False) -> None:
        await self.record(
            ttft=ttft, outcome=outcome, streamed=streamed, prompt_tokens=used.prompt, completion_tokens=used.completion,
            cached_tokens=used.cached,
            extra=_merge(self.extra, {"usage_estimated": True} if used.estimated else None),
        )

    async def settle(self, reply: Completion, used: Tokens) -> None:
        """A finished completion: the cache entry first, then the ledger row."""
        await self.store(reply.text, reply.tool_calls, used)
        await self.record_tokens(used)


def _estimate_prompt(messages: list[dict]) -> int:
    return tokens.count(json.dumps(messages, ensure_ascii=False, default=str))


def _merge(a: dict | None, b: dict | None) -> dict | None:
    if not a:
        return b
    if not b:
        return a
    return {**a, **b}
