"""The knowledge base's settings section (AIBOT_KB_*)."""
from __future__ import annotations

from typing import ClassVar

from bot.core.settings import Section, env


class RagSettings(Section):
    title: ClassVar[str] = "Knowledge base (RAG)"

    max_file_bytes: int = env(
        "AIBOT_KB_MAX_FILE_BYTES", 20 * 1024 * 1024, ge=1, description="largest file accepted into the knowledge base (20 MB)"
    )
    max_pages: int = env("AIBOT_KB_MAX_PAGES", 2_000, ge=1, description="most PDF pages per document")
    max_chars: int = env("AIBOT_KB_MAX_CHARS", 5_000_000, ge=100, description="most extracted characters per document")
    chunk_tokens: int = env("AIBOT_KB_CHUNK_TOKENS", 200, ge=20, le=2_000, description="chunk size in tokens")
    chunk_overlap: int = env("AIBOT_KB_CHUNK_OVERLAP", 30, ge=0, le=500, description="chunk overlap in tokens")
    top_k: int = env("AIBOT_KB_TOP_K", 5, ge=1, le=50, description="passages given to the model per question")
    # Chosen from measured distributions (bench/rag_retrieval.py, docs/benchmarks.md): with
    # the hybrid score, Cranfield questions against a CISI knowledge base and the reverse
    # (0.45-0.68 meet both targets; the FAQ set, held out, was not used to choose).
    min_score: float = env(
        "AIBOT_KB_MIN_SCORE", 0.48, ge=-1, le=2,
        description="score (cosine + share of the question's words, see the RAG page) below which a passage is "
        "not used: below it "
        'for every passage, the answer is "not in the knowledge base"',
    )
    strong_score: float = env(
        "AIBOT_KB_STRONG_SCORE", 0.55, ge=-1, le=2,
        description="a mention is answered from the knowledge base (not plain chat) when its best passage "
        "scores at least this",
    )
    per_document: int = env(
        "AIBOT_KB_PER_DOCUMENT", 2, ge=1, le=50,
        description="most passages of one document among the results, while other documents can fill them",
    )
    hybrid: bool = env(
        "AIBOT_KB_HYBRID", True,
        description="score the dense top-100 by cosine plus the share of the question's words they hold "
        "(BM25), then again after pseudo-relevance feedback; false: cosine only",
    )
    ef_search: int = env(
        "AIBOT_KB_EF_SEARCH", 100, ge=10, le=1_000, description="HNSW `ef_search` (recall vs latency, see the benchmark)"
    )
