"""The one LLM interface: `complete()` and `stream()` over an injected `AsyncOpenAI`.

Built once at start and passed down. Retries on 429/5xx/timeouts with backoff (honouring
Retry-After) are the SDK's, configured here. Every call, whatever its outcome, writes one
usage-ledger row: pattern, model, tokens (streams ask for the final usage chunk), latency,
time to first token, cost, cache hit, outcome, and who it was for.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bot.core.budgets import Budgets
from bot.core.cache import Cache, Cached
from bot.core.errors import LLMError, LLMNotConfigured
from bot.core.ledger import Ledger, UsageRecord
from bot.core.llm.bookkeeping import PAID, CallBook, count_tokens, tenant_key
from bot.core.llm import sse
from bot.core.llm.chunks import StreamAccumulator, first_choice
from bot.core.llm.failures import as_llm_error, stream_error
from bot.core.llm.types import ChatOptions, Completion
from bot.core.messages import CallInfo
from bot.core.metrics import METRICS
from bot.core.pricing import PriceTable
from bot.core.settings import LLM_SETUP_HINT, Settings

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)


def build_client(settings: Settings) -> "LazyClient | None":
    """The process's one SDK client, or None when no model endpoint is configured."""
    if not settings.llm_configured:
        return None
    return LazyClient(settings)


def _http_client(openai) -> Any:
    """The SDK's aiohttp transport where this SDK version has it (aiohttp is already here
    for Slack): a streamed answer's chunks cost far less to read than through httpx's own
    stack. None (the SDK's default httpx client) otherwise."""
    try:
        return openai.DefaultAioHttpClient()
    except (AttributeError, RuntimeError):  # an SDK without it, or without its aiohttp extra
        return None


class LazyClient:
    """The process's `openai.AsyncOpenAI`, made on first use: importing the SDK costs about
    0.5 s, which commands that never call the model (`aibot kb search`, `kb list`) skip.
    Attributes are the SDK client's (`client.chat.completions.create(...)`)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: openai.AsyncOpenAI | None = None

    @property
    def sdk(self) -> "openai.AsyncOpenAI":
        if self._client is None:
            import openai

            s = self._settings
            self._client = openai.AsyncOpenAI(
                api_key=s.openai_api_key.get_secret_value() if s.openai_api_key else "not-needed",
                base_url=s.openai_base_url or None,
                timeout=s.llm_timeout,
                max_retries=s.llm_max_retries,
                http_client=_http_client(openai),
            )
        return self._client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sdk, name)

    async def close(self) -> None:
        """Close the SDK client if it was made (never imports the SDK just to close it)."""
        if self._client is not None:
            await self._client.close()


class LLM:
    def __init__(
        self,
        *,
        client: "openai.AsyncOpenAI | LazyClient | None",
        settings: Settings,
        ledger: Ledger | None = None,
        cache: Cache | None = None,
        prices: PriceTable | None = None,
        budgets: Budgets | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.ledger = ledger
        self.cache = cache
        self.prices = prices or PriceTable(settings.prices)
        self.budgets = budgets

    async def lookup(self, messages: list[dict], *, call: CallInfo, options: ChatOptions | None = None) -> Cached | None:
        """The exact-match cache entry for this prompt in `call`'s workspace, if any (nothing recorded)."""
        options = options or ChatOptions()
        if self.cache is None or options.tools:
            return None
        return await self.cache.get(self.exact_key(messages, call=call, options=options))

    def exact_key(self, messages: list[dict], *, call: CallInfo, options: ChatOptions | None = None) -> str:
        """The exact-match cache key of this prompt in `call`'s workspace."""
        options = options or ChatOptions()
        return tenant_key(call, self._params(messages, options)["model"], messages, options)

    async def _admit(self, call: CallInfo) -> None:
        """Refuse a model call over a budget (OverBudget, a UserError): nothing is called."""
        if self.budgets is not None:
            await self.budgets.check(call)

    @property
    def configured(self) -> bool:
        return self.client is not None

    def _require(self) -> "openai.AsyncOpenAI":
        if self.client is None:
            raise LLMNotConfigured(LLM_SETUP_HINT)
        return self.client

    def _params(self, messages: list[dict], options: ChatOptions) -> dict:
        model = options.model or self.settings.chat_model
        params: dict[str, Any] = {"model": model, "messages": messages}
        for name in ("temperature", "tools", "tool_choice", "parallel_tool_calls", "response_format", "stop", "seed"):
            value = getattr(options, name)
            if value is not None:
                params[name] = value
        if options.max_tokens is not None:
            # reasoning models take max_completion_tokens; most compatible servers max_tokens
            key = "max_completion_tokens" if model.startswith(("o1", "o3", "o4", "gpt-5")) else "max_tokens"
            params[key] = options.max_tokens
        return params

    async def _record(self, call: CallInfo, model: str, started: float, *, ttft: float | None = None, **kw) -> None:
        """One call's outcome: the metrics, a log line (with the request id of the event
        it served) and its ledger row."""
        discount = kw.pop("discount", Decimal(1))
        saved = kw.pop("saved", None)  # a cache hit: the (prompt, completion) tokens it did not pay for
        cost = Decimal(0)
        if saved is not None:
            kw["saved_usd"] = self.prices.cost(model, *saved)
        elif not kw.get("cache_hit") and kw.get("outcome", "ok") in PAID:
            cost = self.prices.cost(model, kw.get("prompt_tokens", 0), kw.get("completion_tokens", 0),
                                    cached_tokens=kw.get("cached_tokens", 0), discount=discount)
        seconds = time.perf_counter() - started
        first = None if ttft is None else ttft - started
        outcome = kw.get("outcome", "ok")
        METRICS.model_call(
            pattern=call.pattern, model=model, outcome=outcome, seconds=seconds, ttft=first,
            prompt_tokens=kw.get("prompt_tokens", 0), completion_tokens=kw.get("completion_tokens", 0),
            cost_usd=float(cost), cache_hit=bool(kw.get("cache_hit")),
        )
        log.info("model call %s", outcome, extra={"event": "model_call", "pattern": call.pattern, "model": model,
                                                  "outcome": outcome, "latency_ms": round(seconds * 1000, 1),
                                                  "cache_hit": bool(kw.get("cache_hit"))})
        if self.ledger is None:
            return
        await self.ledger.record(
            UsageRecord(
                call=call,
                model=model,
                latency_ms=seconds * 1000,
                ttft_ms=None if first is None else first * 1000,
                cost_usd=cost,
                **kw,
            )
        )

    async def record_usage(
        self, call: CallInfo, model: str, *, prompt_tokens: int, completion_tokens: int,
        discount: Decimal = Decimal(1), extra: dict | None = None, cached_tokens: int = 0,
    ) -> None:
        """Record a call whose result arrived another way (a provider batch's output file),
        priced at `discount` times the list price."""
        await self._record(
            call, model, time.perf_counter(), prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            discount=discount, extra=extra, cached_tokens=cached_tokens,
        )

    async def record_hit(self, call: CallInfo, model: str, *, prompt_tokens: int, completion_tokens: int,
                         streamed: bool = False, extra: dict | None = None) -> None:
        """Record an answer served from a cache outside this client (the semantic answer
        cache): cost 0, and what the model call would have cost as the saving."""
        await self._record(call, model, time.perf_counter(), ttft=time.perf_counter(), cache_hit=True,
                           streamed=streamed, saved=(prompt_tokens, completion_tokens), extra=extra)

    # ------------------------------------------------------------------ complete

    async def complete(
        self,
        messages: list[dict],
        *,
        call: CallInfo,
        options: ChatOptions | None = None,
        cache: bool = False,
        extra: dict | None = None,
        fresh: bool = False,
    ) -> Completion:
        """One chat completion. Raises LLMNotConfigured or LLMError (never SDK errors), or
        OverBudget. `fresh`: skip the cache lookup (the answer still replaces the entry)."""
        client = self._require()
        options = options or ChatOptions()
        params = self._params(messages, options)
        book = CallBook(cache=self.cache, record=self._record, call=call, messages=messages, options=options,
                        params=params, use_cache=cache, extra=extra)
        book.skip_lookup = fresh
        hit = await book.cached()
        if hit is not None:
            await book.record(cache_hit=True, saved=(hit.prompt_tokens, hit.completion_tokens))
            return Completion(text=hit.text, model=book.model, finish_reason="stop", cached=True)
        await self._admit(call)
        try:
            resp = await client.chat.completions.create(**params)
        except Exception as exc:
            err = as_llm_error(exc)
            log.warning("model call failed (%s, pattern %s): %s", err.kind, call.pattern, type(exc).__name__)
            await book.record(outcome=err.kind)
            raise err from None
        reply = first_choice(resp, book.model)
        used = count_tokens(resp.usage, messages, reply.text)
        # the cache entry before the ledger row, and both even if the caller is cancelled
        # now: a caller that retries gets a cache hit, so one answer is paid for once
        # (batch jobs resume after a crash relying on it)
        await asyncio.shield(book.settle(reply, used))
        return replace(reply, prompt_tokens=used.prompt, completion_tokens=used.completion, cached_tokens=used.cached)

    # ------------------------------------------------------------------ stream

    def stream(
        self,
        messages: list[dict],
        *,
        call: CallInfo,
        options: ChatOptions | None = None,
        cache: bool = False,
        extra: dict | None = None,
        fresh: bool = False,
    ) -> "LLMStream":
        """Text deltas as they arrive; `.completion` holds the whole result afterwards.
        Failures raise LLMError from the iteration (`cut` once text has been sent)."""
        return LLMStream(self, messages, call, options or ChatOptions(), cache, extra, fresh=fresh)


class LLMStream:
    def __init__(self, llm: LLM, messages: list[dict], call: CallInfo, options: ChatOptions, cache: bool,
                 extra: dict | None, *, fresh: bool = False) -> None:
        self.fresh = fresh
        self.llm = llm
        self.messages = messages
        self.call = call
        self.options = options
        self.use_cache = cache
        self.extra = extra
        self.completion: Completion | None = None

    def __aiter__(self) -> AsyncIterator[str]:
        return self._run()

    async def _run(self) -> AsyncIterator[str]:
        client = self.llm._require()
        params = self.llm._params(self.messages, self.options)
        book = CallBook(cache=self.llm.cache, record=self.llm._record, call=self.call, messages=self.messages,
                        options=self.options, params=params, use_cache=self.use_cache, extra=self.extra)
        book.skip_lookup = self.fresh
        hit = await book.cached()
        if hit is not None:
            self.completion = Completion(text=hit.text, model=book.model, finish_reason="stop", cached=True)
            await book.record(ttft=time.perf_counter(), cache_hit=True, streamed=True,
                              saved=(hit.prompt_tokens, hit.completion_tokens))
            yield hit.text
            return
        await self.llm._admit(self.call)
        acc = StreamAccumulator()
        outcome = "ok"
        try:
            async with contextlib.AsyncExitStack() as stack:
                response = await _open_stream(stack, client, params)
                async for chunk in sse.chunks(response):
                    for delta in acc.fold(chunk):
                        yield delta
            if acc.finish is None:  # the connection ended without a finish: the answer is cut
                raise LLMError("cut", "stream ended without finish_reason")
        except BaseException as exc:
            err = stream_error(exc, sent=bool(acc.parts), pattern=self.call.pattern)
            outcome = err.kind if isinstance(err, LLMError) else "cancelled"
            if err is exc:
                raise
            raise err from None
        finally:  # one ledger row and a `.completion` whatever the outcome
            text = acc.text
            used = count_tokens(acc.usage, self.messages, text, outcome)
            self.completion = acc.completion(book.model, used)
            await book.record_tokens(used, outcome=outcome, ttft=acc.ttft, streamed=True)
        await book.store(text, acc.calls, used)  # reached only when the stream finished ok


async def _open_stream(stack: contextlib.AsyncExitStack, client: "openai.AsyncOpenAI", params: dict):
    """The raw streaming response, open (the SDK's retries done) and closed by `stack`."""
    try:
        return await stack.enter_async_context(sse.open_chunks(client, params))
    except Exception as exc:
        raise as_llm_error(exc) from None
