"""The knowledge base's extractor offered to the rest of the bot (`Services.documents`,
`bot.core.documents.DocumentReader`): the same text `aibot kb add` would index."""
from __future__ import annotations

import asyncio
from collections.abc import Callable

from patterns.rag.extract import Limits, extract, kind_of

DOCUMENT_KINDS = {"pdf", "docx", "html"}  # plain text and Markdown are read as text


class Documents:
    def __init__(self, *, limits: Callable[[], Limits]) -> None:
        self._limits = limits

    @property
    def max_bytes(self) -> int:
        return self._limits().max_bytes

    def reads(self, name: str) -> bool:
        return kind_of(name) in DOCUMENT_KINDS

    async def text(self, name: str, data: bytes) -> str:
        extracted = await asyncio.to_thread(extract, name, data, self._limits())
        return "\n\n".join(block.text for block in extracted.blocks)
