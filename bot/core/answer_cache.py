"""Answers through the caches, cheapest first: the exact-match cache (one indexed
lookup), then the semantic answer cache (one local embedding and a pgvector search),
then the model (within the budgets). A reused answer is recorded in the ledger as a
cache hit with what it saved, and the caller is told (`CachedStream.hit`) so that the
reply can say so; a fresh answer (`fresh=True`, `/ask --fresh`) skips both lookups and
replaces what they held."""
from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator

from sqlalchemy import text

from bot.core.answers import FRESH
from bot.core.llm import LLM, ChatOptions
from bot.core.llm.types import Completion
from bot.core.messages import CallInfo
from bot.core.semantic import AnswerKey, SemanticCache

log = logging.getLogger(__name__)


_FRESH = re.compile(r"^\s*--fresh\b\s*", re.IGNORECASE)


def fresh_flag(text: str) -> tuple[bool, str]:
    """(`--fresh` opened the message, the message without it)."""
    stripped, n = _FRESH.subn("", text, count=1)
    return bool(n), stripped.strip()


def cached_note(how_to_refresh: str) -> str:
    """The line under a reused answer."""
    return f"\n\n_cached answer · for a fresh one: {how_to_refresh}_"


class CachedAnswers:
    def __init__(self, *, llm: LLM, semantic: SemanticCache | None) -> None:
        self.llm = llm
        self.semantic = semantic

    def stream(self, messages: list[dict], *, call: CallInfo, options: ChatOptions, key: AnswerKey, question: str,
               fresh: bool = False, documents: list[int] | None = None, extra: dict | None = None) -> "CachedStream":
        return CachedStream(self, messages, call=call, options=options, key=key, question=question, fresh=fresh,
                            documents=documents, extra=extra)

    async def evict(self, answer_id: str, rated) -> None:
        """A 👎 on an answer served from a cache drops that entry, so the next person who
        asks gets a new answer (a `FeedbackStore.on_thumbs_down` hook; `rated` is the
        answer's usage-ledger row)."""
        ledger = self.llm.ledger
        if rated.usage_id is None or not rated.cache_hit or ledger is None:
            return
        async with ledger.db.session() as s:
            extra = (await s.execute(text("SELECT extra FROM usage WHERE id = :id"), {"id": rated.usage_id})).scalar()
        extra = extra or {}
        if extra.get("semantic_id") and self.semantic is not None:
            await self.semantic.forget(int(extra["semantic_id"]))
        if extra.get("exact_key") and self.llm.cache is not None:
            await self.llm.cache.delete(str(extra["exact_key"]))
        log.info("answer %s rated 👎: its cached entry (%s) is forgotten", answer_id, extra.get("cache"))


class CachedStream:
    """Text of the answer, from a cache or the model; `.hit` is "exact", "semantic" or None."""

    def __init__(self, answers: CachedAnswers, messages: list[dict], *, call: CallInfo, options: ChatOptions,
                 key: AnswerKey, question: str, fresh: bool, documents: list[int] | None, extra: dict | None) -> None:
        self.answers = answers
        self.messages = messages
        self.call = call
        self.options = options
        self.key = key
        self.question = question
        self.fresh = fresh
        self.documents = documents
        self.extra = extra
        self.hit: str | None = None
        self.completion: Completion | None = None

    def __aiter__(self) -> AsyncIterator[str]:
        return self._run()

    async def _run(self) -> AsyncIterator[str]:
        llm, semantic = self.answers.llm, self.answers.semantic
        self.fresh = self.fresh or FRESH.get()  # Regenerate asks again, whatever the caches hold
        if not self.fresh:
            exact = await llm.lookup(self.messages, call=self.call, options=self.options)
            if exact is not None:
                yield await self._reuse("exact", exact.text, exact.prompt_tokens, exact.completion_tokens,
                                        exact_key=llm.exact_key(self.messages, call=self.call, options=self.options))
                return
        vector = None
        if semantic is not None and semantic.enabled:
            vector = await semantic.embed(self.question)
            if not self.fresh:
                found = await semantic.lookup(self.key, self.question, vector)
                if found is not None:
                    yield await self._reuse("semantic", found.answer, found.prompt_tokens, found.completion_tokens,
                                            similarity=round(found.similarity, 4), semantic_id=found.id)
                    return
        inner = llm.stream(self.messages, call=self.call, options=self.options, cache=True, fresh=True,
                           extra=self.extra)
        async for delta in inner:
            yield delta
        self.completion = c = inner.completion
        if semantic is not None and c is not None and c.finish_reason == "stop" and c.text and not c.tool_calls:
            await semantic.store(self.key, self.question, vector, c.text, prompt_tokens=c.prompt_tokens,
                                 completion_tokens=c.completion_tokens, documents=self.documents)

    async def _reuse(self, how: str, text: str, prompt_tokens: int, completion_tokens: int, **more) -> str:
        self.hit = how
        self.completion = Completion(text=text, model=self.key.model, finish_reason="stop", cached=True)
        await self.answers.llm.record_hit(self.call, self.key.model, prompt_tokens=prompt_tokens,
                                          completion_tokens=completion_tokens, streamed=True,
                                          extra={**(self.extra or {}), "cache": how, **more})
        return text
