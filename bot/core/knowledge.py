"""What the core and other patterns may ask of the knowledge base (implemented by the RAG
pattern): tenant-scoped passage search. Kept here so that callers (agent tools, the
router's choice of pattern) do not depend on how retrieval is built."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Passage:
    chunk_id: int
    document_id: int
    document: str  # the document's name, e.g. "handbook.pdf"
    text: str
    score: float  # higher is more relevant
    heading: str | None = None  # heading path, e.g. "Security > Keys"
    page: int | None = None  # PDF page, 1-based

    @property
    def citation(self) -> str:
        """Document name + section/page, as shown after an answer."""
        parts = [self.document]
        if self.heading:
            parts.append(f"§ {self.heading}")
        if self.page:
            parts.append(f"p. {self.page}")
        return ", ".join(parts)


class KnowledgeBase(Protocol):
    async def search(self, *, tenant: str, query: str, k: int = 5, channel: str | None = None) -> list[Passage]:
        """The `k` best passages of `tenant`'s documents for `query` (never another tenant's)."""
        ...
