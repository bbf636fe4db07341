"""Extraction limits and structure-first chunking (no model, no database)."""
from __future__ import annotations

import pytest

from bot.core import tokens
from patterns.rag.chunking import chunk
from bot.core.errors import UserError
from patterns.rag.extract import Limits, extract
from tests import kb_docs

LIMITS = Limits(max_bytes=1_000_000, max_pages=10, max_chars=100_000)


def test_sections_are_chunked_separately_with_overlap_and_a_token_cap():
    body = " ".join(f"Sentence number {i} explains one more detail of key rotation." for i in range(120))
    md = f"# Guide\n\n## Keys\n\n{body}\n\n## Billing\n\nRefunds take five days.\n".encode()
    chunks = chunk(extract("guide.md", md, LIMITS).blocks, max_tokens=100, overlap=20)
    keys = [c for c in chunks if c.heading == "Guide > Keys"]
    assert len(keys) > 5
    assert all(c.token_count <= 100 + 25 for c in chunks)
    # each piece after the first starts with the end of the previous one
    first_words = keys[1].text.split()[:5]
    assert " ".join(first_words) in keys[0].text
    assert chunks[-1].heading == "Guide > Billing" and chunks[-1].text == "Refunds take five days."
    assert tokens.count(chunks[-1].text) == chunks[-1].token_count


def test_pdf_chunks_remember_their_page():
    data = kb_docs.pdf(["Alpha page text.", "Beta page text.", "Gamma page text."])
    chunks = chunk(extract("x.pdf", data, LIMITS).blocks)
    assert [(c.page, c.text) for c in chunks] == [(1, "Alpha page text."), (2, "Beta page text."), (3, "Gamma page text.")]


@pytest.mark.parametrize(
    "name, data, limits, expected",
    [
        ("long.pdf", kb_docs.pdf(["p"] * 3), Limits(1_000_000, 2, 100_000), "too many pages (3; the limit is 2)"),
        ("long.txt", b"x" * 500, Limits(1_000_000, 10, 100), "too much text (500 characters; the limit is 100)"),
        ("big.md", b"x" * 2_000, Limits(1_000, 10, 100_000), "too large"),
        ("blank.md", b" \n\n \t", LIMITS, "is empty"),
        ("bin.txt", b"\x00\x01\x02binary", LIMITS, "not a text file"),
    ],
)
def test_limits_and_bad_input_are_one_sentence(name, data, limits, expected):
    with pytest.raises(UserError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        extract(name, data, limits)
