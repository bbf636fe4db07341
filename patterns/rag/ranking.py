"""How retrieved chunks are scored and chosen: one `score` per passage, the value the
ranking used, higher is better, results in descending order.

- dense: the cosine similarity to the question;
- fulltext: Postgres `ts_rank` of the question's lexemes;
- rrf: reciprocal rank fusion of the dense top-100 with their full-text rank (the former
  default, kept as a reference in the benchmark);
- hybrid (default): `blend` below, over the dense top-100 candidates.

`blend` stays on the cosine's scale, so that the "not in the knowledge base" threshold
(AIBOT_KB_MIN_SCORE) means the same on a knowledge base of one document as on one of a
million: the cosine plus a bounded bonus for the question's words found in the passage
(`ts_rank` r mapped to r / (r + LEXICAL_SCALE), so at most LEXICAL_WEIGHT). Weights from
`bench/rag_blend_grid.py` on Cranfield + CISI (nDCG@10 flat within 0.003 for weights
0.3-0.5); the FAQ set stays held out. Pseudo-relevance feedback (the centroid of the best
three candidates) was measured too: +0.007 on Cranfield, -0.005 on CISI; left out.
"""
from __future__ import annotations

from dataclasses import dataclass

RRF_K = 60  # the usual reciprocal-rank-fusion constant
LEXICAL_WEIGHT = 0.3
LEXICAL_SCALE = 0.02


@dataclass(frozen=True)
class Candidate:
    id: int
    document_id: int
    cosine: float
    lexical: float = 0.0  # ts_rank, 0 when no lexeme matches


def blend(c: Candidate, *, lexical_weight: float = LEXICAL_WEIGHT, lexical_scale: float = LEXICAL_SCALE) -> float:
    """The hybrid score of one candidate (see the module's docstring)."""
    lexical = c.lexical / (c.lexical + lexical_scale) if c.lexical > 0 else 0.0
    return c.cosine + lexical_weight * lexical


def rrf(rankings: list[list[int]], weights: list[float]) -> dict[int, float]:
    """Weighted reciprocal rank fusion of ranked id lists: id → fused score."""
    score: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, cid in enumerate(ranking, start=1):
            score[cid] = score.get(cid, 0.0) + weight / (RRF_K + rank)
    return score


def choose(scored: list[tuple[int, int, float]], *, k: int, per_document: int) -> list[tuple[int, float]]:
    """The `k` best (chunk id, score) of (chunk id, document id, score) rows, best first, with
    at most `per_document` chunks of one document while other documents can fill the k
    places (a knowledge base of one long document still gives k passages). Ties: lower id."""
    order = sorted(scored, key=lambda r: (-r[2], r[0]))
    kept: list[tuple[int, int, float]] = []
    spare: list[tuple[int, int, float]] = []
    count: dict[int, int] = {}
    for row in order:
        if count.get(row[1], 0) < per_document:
            count[row[1]] = count.get(row[1], 0) + 1
            kept.append(row)
            if len(kept) == k:
                break
        else:
            spare.append(row)
    if len(kept) < k:
        kept = sorted(kept + spare[: k - len(kept)], key=lambda r: (-r[2], r[0]))
    return [(r[0], r[2]) for r in kept]
