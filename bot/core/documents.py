"""Text out of document files (PDF, Word, HTML): what the core and the patterns may ask
of the pattern that reads them (the RAG pattern sets `Services.documents`), so that
`aibot summarize report.pdf` reads the file the way the knowledge base does."""
from __future__ import annotations

from typing import Protocol


class DocumentReader(Protocol):
    max_bytes: int  # largest file it reads

    def reads(self, name: str) -> bool:
        """Whether a file of this name is a document it extracts (not plain text)."""
        ...

    async def text(self, name: str, data: bytes) -> str:
        """The document's text; UserError with one sentence when it has none or is broken."""
        ...
