"""The one LLM interface: `complete()` and `stream()` over an injected `AsyncOpenAI`.

Built once at start and passed down. Retries on 429/5xx/timeouts with backoff (honouring
Retry-After) are the SDK's, configured here. Every call, whatever its outcome, writes one
usage-ledger row: pattern, model, tokens (streams ask for the final usage chunk), latency,
time to first token, cost, cache hit, outcome, and who it was for.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sized
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import openai
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall
from pydantic import BaseModel, ConfigDict

from bot.core import tokens
from bot.core.cache import Cache, Cached, cache_key
from bot.core.settings import LLM_SETUP_HINT, Settings
from bot.core.errors import LLMError, LLMNotConfigured
from bot.core.ledger import Ledger, UsageRecord
from bot.core.messages import CallInfo
from bot.core.pricing import PriceTable

log = logging.getLogger(__name__)

# outcomes in which the model generated tokens, so the provider bills them
_PAID = ("ok", "cut", "cancelled")


class ChatOptions(BaseModel):
    """Per-call options; unknown keys are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None  # default: AIBOT_CHAT_MODEL
    temperature: float | None = None
    max_tokens: int | None = None
    tools: list[dict] | None = None
    tool_choice: str | dict | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict | None = None
    stop: list[str] | None = None
    seed: int | None = None


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text as the model wrote it; may be malformed

    def as_message_part(self) -> dict:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class Completion:
    text: str
    model: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False

    def assistant_message(self) -> dict:
        """This completion as an assistant message, to continue a conversation."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            msg["tool_calls"] = [tc.as_message_part() for tc in self.tool_calls]
        return msg


def build_client(settings: Settings) -> openai.AsyncOpenAI | None:
    """The process's one SDK client, or None when no model endpoint is configured."""
    if not settings.llm_configured:
        return None
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "not-needed"
    return openai.AsyncOpenAI(
        api_key=key,
        base_url=settings.openai_base_url or None,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
    )


def as_llm_error(exc: BaseException) -> LLMError:
    """`exc` as the LLMError a caller sees: its kind says what went wrong, never the SDK's text."""
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, openai.RateLimitError):
        return LLMError("rate_limited", "429", retry_after=_retry_after(exc))
    if isinstance(exc, openai.APITimeoutError):
        return LLMError("timeout", type(exc).__name__)
    if isinstance(exc, openai.APIConnectionError):
        return LLMError("connection", type(exc).__name__)
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return LLMError("auth", str(getattr(exc, "status_code", "")))
    if isinstance(exc, (openai.BadRequestError, openai.NotFoundError, openai.UnprocessableEntityError)):
        return LLMError("bad_request", str(getattr(exc, "status_code", "")))
    if isinstance(exc, openai.APIStatusError):
        return LLMError("unavailable", str(exc.status_code))
    return LLMError("error", type(exc).__name__)


def _retry_after(exc: openai.RateLimitError) -> float | None:
    retry = exc.response.headers.get("retry-after") if exc.response is not None else None
    try:
        return float(retry) if retry else None
    except ValueError:
        return None


class LLM:
    def __init__(
        self,
        *,
        client: openai.AsyncOpenAI | None,
        settings: Settings,
        ledger: Ledger | None = None,
        cache: Cache | None = None,
        prices: PriceTable | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.ledger = ledger
        self.cache = cache
        self.prices = prices or PriceTable(settings.prices)

    @property
    def configured(self) -> bool:
        return self.client is not None

    def _require(self) -> openai.AsyncOpenAI:
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
        if self.ledger is None:
            return
        discount = kw.pop("discount", Decimal(1))
        cost = Decimal(0)
        if not kw.get("cache_hit") and kw.get("outcome", "ok") in _PAID:
            cost = self.prices.cost(model, kw.get("prompt_tokens", 0), kw.get("completion_tokens", 0), discount=discount)
        await self.ledger.record(
            UsageRecord(
                call=call,
                model=model,
                latency_ms=(time.perf_counter() - started) * 1000,
                ttft_ms=None if ttft is None else (ttft - started) * 1000,
                cost_usd=cost,
                **kw,
            )
        )

    async def record_usage(
        self, call: CallInfo, model: str, *, prompt_tokens: int, completion_tokens: int,
        discount: Decimal = Decimal(1), extra: dict | None = None,
    ) -> None:
        """Record a call whose result arrived another way (a provider batch's output file),
        priced at `discount` times the list price."""
        await self._record(
            call, model, time.perf_counter(), prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            discount=discount, extra=extra,
        )

    # ------------------------------------------------------------------ complete

    async def complete(
        self,
        messages: list[dict],
        *,
        call: CallInfo,
        options: ChatOptions | None = None,
        cache: bool = False,
        extra: dict | None = None,
    ) -> Completion:
        """One chat completion. Raises LLMNotConfigured or LLMError (never SDK errors)."""
        client = self._require()
        options = options or ChatOptions()
        params = self._params(messages, options)
        book = _CallBook(self, call, messages, options, params, cache=cache, extra=extra)
        hit = await book.cached()
        if hit is not None:
            await book.record(cache_hit=True)
            return Completion(text=hit.text, model=book.model, finish_reason="stop", cached=True)
        try:
            resp = await client.chat.completions.create(**params)
        except Exception as exc:
            err = as_llm_error(exc)
            log.warning("model call failed (%s, pattern %s): %s", err.kind, call.pattern, type(exc).__name__)
            await book.record(outcome=err.kind)
            raise err from None
        reply = _first_choice(resp, book.model)
        used = _count_tokens(resp.usage, messages, reply.text)
        # the cache entry before the ledger row, and both even if the caller is cancelled
        # now: a caller that retries gets a cache hit, so one answer is paid for once
        # (batch jobs resume after a crash relying on it)
        await asyncio.shield(book.settle(reply, used))
        return replace(reply, prompt_tokens=used.prompt, completion_tokens=used.completion)

    # ------------------------------------------------------------------ stream

    def stream(
        self,
        messages: list[dict],
        *,
        call: CallInfo,
        options: ChatOptions | None = None,
        cache: bool = False,
        extra: dict | None = None,
    ) -> "LLMStream":
        """Text deltas as they arrive; `.completion` holds the whole result afterwards.
        Failures raise LLMError from the iteration (`cut` once text has been sent)."""
        return LLMStream(self, messages, call, options or ChatOptions(), cache, extra)


class LLMStream:
    def __init__(self, llm: LLM, messages: list[dict], call: CallInfo, options: ChatOptions, cache: bool, extra: dict | None) -> None:
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
        book = _CallBook(self.llm, self.call, self.messages, self.options, params, cache=self.use_cache, extra=self.extra)
        hit = await book.cached()
        if hit is not None:
            self.completion = Completion(text=hit.text, model=book.model, finish_reason="stop", cached=True)
            await book.record(ttft=time.perf_counter(), cache_hit=True, streamed=True)
            yield hit.text
            return
        acc = _StreamAccumulator()
        outcome = "ok"
        try:
            chunks = await _open_stream(client, params)
            async for chunk in chunks:
                for delta in acc.fold(chunk):
                    yield delta
            if acc.finish is None:  # the connection ended without a finish: the answer is cut
                raise LLMError("cut", "stream ended without finish_reason")
        except BaseException as exc:
            err = _stream_error(exc, sent=bool(acc.parts), pattern=self.call.pattern)
            outcome = err.kind if isinstance(err, LLMError) else "cancelled"
            if err is exc:
                raise
            raise err from None
        finally:  # one ledger row and a `.completion` whatever the outcome
            text = acc.text
            used = _count_tokens(acc.usage, self.messages, text, outcome)
            self.completion = acc.completion(book.model, used)
            await book.record_tokens(used, outcome=outcome, ttft=acc.ttft, streamed=True)
        await book.store(text, acc.calls, used)  # reached only when the stream finished ok


async def _open_stream(client: openai.AsyncOpenAI, params: dict) -> openai.AsyncStream[ChatCompletionChunk]:
    try:
        return await client.chat.completions.create(**params, stream=True, stream_options={"include_usage": True})
    except Exception as exc:
        raise as_llm_error(exc) from None


def _stream_error(exc: BaseException, *, sent: bool, pattern: str) -> BaseException:
    """What a failed stream raises: a cancellation or an LLMError as it is; anything else
    as an LLMError, `cut` once text has been sent."""
    if isinstance(exc, LLMError) or not isinstance(exc, Exception):
        return exc
    kind = "cut" if sent else as_llm_error(exc).kind
    log.warning("model stream failed (%s, pattern %s): %s", kind, pattern, type(exc).__name__)
    return LLMError(kind, type(exc).__name__)


# ---------------------------------------------------------------------- bookkeeping

@dataclass(frozen=True)
class _Tokens:
    prompt: int
    completion: int
    estimated: bool  # the server sent no usage; counted here with tiktoken


def _count_tokens(usage: CompletionUsage | None, messages: list[dict], text: str, outcome: str = "ok") -> _Tokens:
    """The server's usage, or an estimate: the prompt only when it was paid for."""
    if usage is not None:
        return _Tokens(usage.prompt_tokens, usage.completion_tokens, estimated=False)
    prompt = _estimate_prompt(messages) if outcome in _PAID else 0
    completion = tokens.count(text)
    return _Tokens(prompt, completion, estimated=bool(prompt or completion))


class _CallBook:
    """One call's bookkeeping, shared by `complete` and `stream`: when it started, its
    cache entry (looked up before the call, written after a reusable answer) and its one
    ledger row."""

    def __init__(
        self, llm: LLM, call: CallInfo, messages: list[dict], options: ChatOptions, params: dict,
        *, cache: bool, extra: dict | None,
    ) -> None:
        self.llm = llm
        self.call = call
        self.model: str = params["model"]
        self.extra = extra
        self.started = time.perf_counter()
        self.key: str | None = None
        if cache and llm.cache is not None and not options.tools:
            self.key = cache_key(self.model, messages, options.model_dump(exclude_none=True))

    async def cached(self) -> Cached | None:
        return None if self.key is None else await self.llm.cache.get(self.key)

    async def store(self, text: str, tool_calls: Sized, used: _Tokens) -> None:
        """Cache a plain text answer; one with tool calls depends on what the tools return."""
        if self.key is not None and text and not tool_calls:
            await self.llm.cache.put(self.key, self.model, text, used.prompt, used.completion)

    async def record(self, *, ttft: float | None = None, **row: Any) -> None:
        row.setdefault("extra", self.extra)
        await self.llm._record(self.call, self.model, self.started, ttft=ttft, **row)

    async def record_tokens(self, used: _Tokens, *, outcome: str = "ok", ttft: float | None = None, streamed: bool = False) -> None:
        await self.record(
            ttft=ttft, outcome=outcome, streamed=streamed, prompt_tokens=used.prompt, completion_tokens=used.completion,
            extra=_merge(self.extra, {"usage_estimated": True} if used.estimated else None),
        )

    async def settle(self, reply: Completion, used: _Tokens) -> None:
        """A finished completion: the cache entry first, then the ledger row."""
        await self.store(reply.text, reply.tool_calls, used)
        await self.record_tokens(used)


def _first_choice(resp: ChatCompletion, model: str) -> Completion:
    """The response's first choice; token counts are the caller's to fill in."""
    choice = resp.choices[0] if resp.choices else None
    msg = choice.message if choice else None
    return Completion(
        text=(msg.content or "") if msg else "",
        model=model,
        tool_calls=_tool_calls(msg.tool_calls if msg else None),
        finish_reason=choice.finish_reason if choice else None,
    )


def _tool_calls(parts: list | None) -> list[ToolCall]:
    """The function calls among a message's tool calls; `call_{i}` where the server sent no id."""
    return [
        ToolCall(id=tc.id or f"call_{i}", name=tc.function.name, arguments=tc.function.arguments or "")
        for i, tc in enumerate(parts or [])
        if getattr(tc, "function", None) is not None
    ]


class _StreamAccumulator:
    """Folds streamed chunks into the text so far, tool calls by index, the usage chunk
    and the finish reason, and notes the time of the first content or tool-call delta."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.calls: dict[int, dict] = {}
        self.usage: CompletionUsage | None = None
        self.finish: str | None = None
        self.ttft: float | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def fold(self, chunk: ChatCompletionChunk) -> Iterator[str]:
        """Fold in one chunk, yielding each text delta as soon as it is folded (a reader
        that stops at a delta leaves the rest of the chunk unread, as it would the stream)."""
        if chunk.usage is not None:
            self.usage = chunk.usage
        for choice in chunk.choices or ():
            if choice.finish_reason:
                self.finish = choice.finish_reason
            delta = choice.delta
            if delta is None:
                continue
            for tc in delta.tool_calls or ():
                self._fold_tool_call(tc)
            if delta.content:
                self._first_token()
                self.parts.append(delta.content)
                yield delta.content

    def _fold_tool_call(self, tc: ChoiceDeltaToolCall) -> None:
        self._first_token()
        slot = self.calls.setdefault(tc.index or 0, {"id": "", "name": "", "arguments": ""})
        if tc.id:
            slot["id"] = tc.id
        if tc.function is not None:
            slot["name"] += tc.function.name or ""
            slot["arguments"] += tc.function.arguments or ""

    def _first_token(self) -> None:
        if self.ttft is None:
            self.ttft = time.perf_counter()

    def completion(self, model: str, used: _Tokens) -> Completion:
        return Completion(
            text=self.text, model=model, finish_reason=self.finish,
            prompt_tokens=used.prompt, completion_tokens=used.completion,
            tool_calls=[
                ToolCall(id=c["id"] or f"call_{i}", name=c["name"], arguments=c["arguments"])
                for i, c in sorted(self.calls.items())
            ],
        )


def _estimate_prompt(messages: list[dict]) -> int:
    return tokens.count(json.dumps(messages, ensure_ascii=False, default=str))


def _merge(a: dict | None, b: dict | None) -> dict | None:
    if not a:
        return b
    if not b:
        return a
    return {**a, **b}
