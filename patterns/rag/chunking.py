"""Structure-first chunking: sections (same heading path and page) are kept together, then
split at paragraph/sentence boundaries into token-sized pieces, each piece starting with
the tail of the previous one (overlap) so a sentence cut at a boundary is still found."""
from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

from bot.core import tokens
from patterns.rag.extract import Block


@dataclass(frozen=True)
class Chunk:
    text: str
    heading: str | None  # "Security > Keys"
    page: int | None
    token_count: int


def chunk(blocks: list[Block], *, max_tokens: int = 200, overlap: int = 30) -> list[Chunk]:
    out: list[Chunk] = []
    for (heading, page), group in groupby(blocks, key=lambda b: (b.heading, b.page)):
        section = "\n\n".join(b.text for b in group)
        label = " > ".join(heading) or None
        prev = ""
        for piece in tokens.split(section, max_tokens):
            text = piece
            if prev and overlap:
                tail = _tail(prev, overlap)
                if tail:
                    text = tail + " " + piece
            out.append(Chunk(text, label, page, tokens.count(text)))
            prev = piece
    return out


def _tail(text: str, n: int) -> str:
    """About the last `n` tokens of `text` as whole words (English averages ~0.75 words per token)."""
    words = text.split()
    return " ".join(words[-max(1, int(n * 0.75)) :])
