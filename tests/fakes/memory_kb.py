"""A small in-memory knowledge base implementing the core `KnowledgeBase` protocol
(bot/knowledge.py), for tests that need documents in several tenants without the RAG
pattern: word-overlap scoring, strictly per tenant."""
from __future__ import annotations

import re

from bot.core.knowledge import Passage

_WORD = re.compile(r"\w+")


class MemoryKB:
    def __init__(self) -> None:
        self.docs: dict[str, list[tuple[str, str]]] = {}  # tenant -> [(name, text)]
        self.searches: list[tuple[str, str]] = []  # (tenant, query) as asked

    def add(self, tenant: str, name: str, text: str) -> None:
        self.docs.setdefault(tenant, []).append((name, text))

    async def search(self, *, tenant: str, query: str, k: int = 5, channel: str | None = None) -> list[Passage]:
        self.searches.append((tenant, query))
        words = {w.lower() for w in _WORD.findall(query)}
        scored = []
        for i, (name, text) in enumerate(self.docs.get(tenant, [])):
            score = len(words & {w.lower() for w in _WORD.findall(text)})
            if score:
                scored.append(Passage(chunk_id=i, document_id=i, document=name, text=text, score=float(score)))
        return sorted(scored, key=lambda p: -p.score)[:k]
