"""Grounded answers: the best passages of the tenant's knowledge base go into the prompt
as numbered sources, the answer streams, and the sources it was given follow as
citations (document, section, page). Below the relevance threshold the answer is that
it is not in the knowledge base; with no model configured, the best passages are the
answer."""
from __future__ import annotations

import re
from collections.abc import AsyncIterator

from bot.core import tokens
from bot.core.answer_cache import CachedAnswers, cached_note
from bot.core.errors import UserError
from bot.core.knowledge import Passage
from bot.core.llm import LLM, ChatOptions
from bot.core.messages import CallInfo
from bot.core.semantic import AnswerKey, scope_of, version_of
from bot.core.standalone import is_standalone
from bot.core.settings import Settings
from patterns.rag.settings import RagSettings
from patterns.rag.store import KnowledgeStore

NOT_IN_KB = "That is not in the knowledge base"

SYSTEM = (
    "You answer questions for a team using only the numbered sources from their knowledge base. "
    "Cite the sources you use with their numbers in square brackets, like [1] or [2][3]. "
    "If the sources do not contain the answer, say that it is not in the knowledge base; do not guess "
    "and do not use outside knowledge. Answer concisely, in the language of the question."
)
_CITED = re.compile(r"\[(\d{1,2})\]")
_PROMPT_OVERHEAD = 300


def sources_block(passages: list[Passage]) -> str:
    """The numbered sources as they appear in the prompt."""
    return "\n\n".join(f"[{i}] ({p.citation})\n{p.text}" for i, p in enumerate(passages, start=1))


def fit_passages(passages: list[Passage], budget: int) -> list[Passage]:
    """The best passages that fit in `budget` tokens (at least one, truncated if need be)."""
    kept: list[Passage] = []
    used = 0
    for p in passages:
        n = tokens.count(p.text) + 20
        if kept and used + n > budget:
            break
        kept.append(p)
        used += n
    return kept


def cited(passages: list[Passage], answer: str) -> list[int]:
    """The source numbers the answer cites (all given ones if it cites none)."""
    found = sorted({int(n) for n in _CITED.findall(answer) if 1 <= int(n) <= len(passages)})
    return found or list(range(1, len(passages) + 1))


def citations(passages: list[Passage], answer: str) -> str:
    """"Sources:" lines for the passages the answer cites (all given ones if it cites none)."""
    return "\n".join(["**Sources**"] + [f"[{n}] {passages[n - 1].citation}" for n in cited(passages, answer)])


def passages_reply(passages: list[Passage], *, header: str) -> str:
    lines = [header]
    for i, p in enumerate(passages, start=1):
        snippet = " ".join(p.text.split())
        if len(snippet) > 400:
            snippet = snippet[:400].rsplit(" ", 1)[0] + " …"
        lines.append(f"[{i}] **{p.citation}** (score {p.score:.2f})\n> {snippet}")
    return "\n".join(lines)


def short(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


class GroundedAnswers:
    """Retrieval + grounded answering over a KnowledgeStore: the RAG feature's commands
    and mentions, and `aibot ask`."""

    def __init__(self, *, llm: LLM, store: KnowledgeStore, settings: RagSettings, core: Settings,
                 answers: CachedAnswers | None = None) -> None:
        self.answers = answers
        self.llm = llm
        self.store = store
        self.settings = settings
        self.core = core

    async def relevant(self, *, tenant: str, question: str, channel: str | None) -> list[Passage]:
        """Passages at or above the relevance threshold (AIBOT_KB_MIN_SCORE), best first."""
        found = await self.store.search(tenant=tenant, query=question, k=self.settings.top_k, channel=channel)
        return sorted((p for p in found if p.score >= self.settings.min_score), key=lambda p: -p.score)

    async def strong(self, *, tenant: str, question: str, channel: str | None) -> list[Passage] | None:
        """The relevant passages when the best of them scores at least AIBOT_KB_STRONG_SCORE
        (a mention then goes to RAG rather than chat); None otherwise."""
        passages = await self.relevant(tenant=tenant, question=question, channel=channel)
        if not passages or max(p.score for p in passages) < self.settings.strong_score:
            return None
        return passages

    async def answer(self, question: str, *, tenant: str, channel: str | None, call: CallInfo,
                     passages: list[Passage] | None = None, fresh: bool = False,
                     add_hint: str = "Add documents with /kb add."):
        """A reply: `str` (nothing relevant, or no model configured) or an async iterator
        of text (the streamed grounded answer followed by its citations). `add_hint` ends
        the "nothing relevant" reply (the CLI names its own command).

        A standalone question goes through the answer caches, keyed by the passages it
        is given: a new or replaced document that changes them changes the key, so no
        answer built from old passages is reused. `fresh` asks the model again."""
        question = question.strip()
        if not question:
            raise UserError("Ask a question after /ask, e.g. `/ask how do I rotate the API keys?`")
        if passages is None:
            passages = await self.relevant(tenant=tenant, question=question, channel=channel)
        if not passages:
            return f"{NOT_IN_KB}: I found nothing relevant to “{short(question)}”. {add_hint}"
        if not self.llm.configured:
            return passages_reply(passages, header="No language model is configured, so here are the best passages:")
        passages, stream = self.grounded(question, passages, call=call, fresh=fresh)
        return self._with_citations(stream, passages)

    def grounded(self, question: str, passages: list[Passage], *, call: CallInfo, fresh: bool = False):
        """The passages that fit the prompt, and the model's streamed answer from them
        (through the answer caches for a standalone question; the key's workspace is
        `call.tenant`)."""
        budget = self.core.context_tokens - self.core.answer_max_tokens - _PROMPT_OVERHEAD - tokens.count(question)
        passages = fit_passages(passages, max(200, budget))
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Sources:\n\n{sources_block(passages)}\n\nQuestion: {question}"},
        ]
        options = ChatOptions(max_tokens=self.core.answer_max_tokens, temperature=0.1)
        extra = {"chunks": [p.chunk_id for p in passages]}
        if self.answers is None or not is_standalone(question):
            return passages, self.llm.stream(messages, call=call, options=options, extra=extra)
        key = AnswerKey(tenant=call.tenant, kind="rag", model=options.model or self.core.chat_model,
                        prompt_version=version_of(SYSTEM), scope=scope_of(p.chunk_id for p in passages))
        stream = self.answers.stream(messages, call=call, options=options, key=key, question=question, fresh=fresh,
                                     documents=sorted({p.document_id for p in passages}), extra=extra)
        return passages, stream

    async def _with_citations(self, stream, passages: list[Passage]) -> AsyncIterator[str]:
        parts: list[str] = []
        async for delta in stream:
            parts.append(delta)
            yield delta
        yield "\n\n" + citations(passages, "".join(parts))
        if getattr(stream, "hit", None):
            yield cached_note("`/ask --fresh <question>`")
