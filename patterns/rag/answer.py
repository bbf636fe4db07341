"""Grounded answers: the best passages of the tenant's knowledge base go into the prompt
as numbered sources, the answer streams, and the sources it was given follow as
citations (document, section, page). Below the relevance threshold the answer is that
it is not in the knowledge base; with no model configured, the best passages are the
answer."""
from __future__ import annotations

import re
from collections.abc import AsyncIterator

from bot.core import tokens
from bot.core.errors import UserError
from bot.core.knowledge import Passage
from bot.core.llm import LLM, ChatOptions
from bot.core.messages import CallInfo
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


def citations(passages: list[Passage], answer: str) -> str:
    """"Sources:" lines for the passages the answer cites (all given ones if it cites none)."""
    cited = sorted({int(n) for n in _CITED.findall(answer) if 1 <= int(n) <= len(passages)})
    numbers = cited or list(range(1, len(passages) + 1))
    return "\n".join(["**Sources**"] + [f"[{n}] {passages[n - 1].citation}" for n in numbers])


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

    def __init__(self, *, llm: LLM, store: KnowledgeStore, settings: RagSettings, core: Settings) -> None:
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
                     passages: list[Passage] | None = None):
        """A reply: `str` (nothing relevant, or no model configured) or an async iterator
        of text (the streamed grounded answer followed by its citations)."""
        question = question.strip()
        if not question:
            raise UserError("Ask a question after /ask, e.g. `/ask how do I rotate the API keys?`")
        if passages is None:
            passages = await self.relevant(tenant=tenant, question=question, channel=channel)
        if not passages:
            return f"{NOT_IN_KB}: I found nothing relevant to “{short(question)}”. Add documents with /kb add."
        if not self.llm.configured:
            return passages_reply(passages, header="No language model is configured, so here are the best passages:")
        budget = self.core.context_tokens - self.core.answer_max_tokens - _PROMPT_OVERHEAD - tokens.count(question)
        passages = fit_passages(passages, max(200, budget))
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Sources:\n\n{sources_block(passages)}\n\nQuestion: {question}"},
        ]
        stream = self.llm.stream(
            messages, call=call, options=ChatOptions(max_tokens=self.core.answer_max_tokens, temperature=0.1),
            extra={"chunks": [p.chunk_id for p in passages]},
        )
        return self._with_citations(stream, passages)

    async def _with_citations(self, stream, passages: list[Passage]) -> AsyncIterator[str]:
        parts: list[str] = []
        async for delta in stream:
            parts.append(delta)
            yield delta
        yield "\n\n" + citations(passages, "".join(parts))
