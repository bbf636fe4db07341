"""How retrieved chunks are scored and chosen: one `score` per passage, the value the
ranking used, higher is better, results in descending order.

- dense: the cosine similarity to the question;
- fulltext: Postgres `ts_rank` of the question's lexemes;
- rrf: reciprocal rank fusion of the dense top-100 with their full-text rank (a reference
  in the benchmark);
- blend: the cosine plus a bounded `ts_rank` bonus (`blend` below; the default before
  migration 0016 brought word statistics);
- hybrid (default): `match` then `feedback` below, over the dense top-100 candidates.

hybrid, step 1 (`match`): the cosine plus WORD_WEIGHT times the passage's *word share*:
its BM25 score for the question's lexemes divided by the most BM25 can give them (each
lexeme's idf·(k1+1)), so a value in [0, 1) that says which share of the question's words,
weighted by how rare they are in this knowledge base, the passage holds. Unlike `ts_rank`
it knows that "hypersonic" matters more than "flow" in an aeronautics library, and being a
share it does not grow with the question's length: it stays comparable across questions
and knowledge bases, which the "not in the knowledge base" threshold needs. Word
statistics per tenant: tables kb_lexemes / kb_lexicon (migration 0016).

hybrid, step 2 (`feedback`, pseudo-relevance feedback): the question's vector moves
towards the centroid of the FEEDBACK best passages of step 1 (Rocchio), by
FEEDBACK_WEIGHT times the square of their mutual similarity: passages about one subject
pull the question towards it (a vague question gets the knowledge base's words for its
subject); best passages about different things (a small knowledge base of unrelated
answers) barely move it. The FEEDBACK_POOL best candidates of step 1 are re-scored with
the moved vector plus the same word share.

The score of a result is that ranking value, anchored so that the best result carries
step 1's best value (`anchor`): ranking by it is unchanged, and the threshold compares
the question's plain match (cosine + word share), not one inflated by the feedback.
Constants from `bench/rag_hybrid_grid.py` on Cranfield and CISI (docs/benchmarks.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

RRF_K = 60  # the usual reciprocal-rank-fusion constant
LEXICAL_WEIGHT = 0.3  # blend
LEXICAL_SCALE = 0.02  # blend
K1, B = 1.2, 0.75  # BM25's usual constants
WORD_WEIGHT = 1.0
FEEDBACK = 3
FEEDBACK_WEIGHT = 1.5
FEEDBACK_POOL = 30  # the best of step 1 re-scored by step 2 (all 100: nDCG@10 within 0.001, 2x the cost)


@dataclass(frozen=True)
class Candidate:
    id: int
    document_id: int
    cosine: float
    lexical: float = 0.0  # ts_rank, 0 when no lexeme matches (blend)
    words: dict[str, int] = field(default_factory=dict)  # the question's lexemes in the passage: count
    length: int = 0  # the passage's length for BM25: its distinct lexemes (`length(tsvector)`)


@dataclass(frozen=True)
class Lexicon:
    """A knowledge base's word statistics: passages, words, and passages per lexeme of the question."""
    chunks: int
    words: int  # the passages' lengths summed (distinct lexemes of each)
    holding: dict[str, int]  # lexeme -> passages that hold it (0 if none)

    def idf(self, lexeme: str) -> float:
        n, f = max(self.chunks, 1), self.holding.get(lexeme, 0)
        return math.log(1 + (n - f + 0.5) / (f + 0.5))

    @property
    def average(self) -> float:
        return self.words / self.chunks if self.chunks else 1.0


def word_share(c: Candidate, lexicon: Lexicon) -> float:
    """BM25 of the passage for the question's lexemes over the most it could be: in [0, 1)."""
    most = sum(lexicon.idf(w) for w in lexicon.holding) * (K1 + 1)
    if not most or not c.words:
        return 0.0
    norm = K1 * (1 - B + B * c.length / max(lexicon.average, 1e-9))
    got = sum(lexicon.idf(w) * tf * (K1 + 1) / (tf + norm) for w, tf in c.words.items() if w in lexicon.holding)
    return got / most


def match(c: Candidate, lexicon: Lexicon) -> float:
    """hybrid, step 1: cosine + word share (module docstring)."""
    return c.cosine + WORD_WEIGHT * word_share(c, lexicon)


def feedback(candidates: list[Candidate], first: dict[int, float], similar: dict[tuple[int, int], float],
             fed: list[int]) -> dict[int, float]:
    """hybrid, step 2: candidate id → ranking value with the question moved towards the
    passages `fed` (the best of step 1). `first`: step 1's values; `similar[(p, f)]`: the
    cosine of candidate p and fed passage f. The cosine to the moved vector is computed from
    cosines alone: q' = q + w·mean(f), cos(q', p) = (q·p + w·mean_f f·p) / |q'|."""
    m = len(fed)
    if m < 2:
        return dict(first)
    pairs = [similar.get((a, b), 0.0) for i, a in enumerate(fed) for b in fed[i + 1:]]
    coherence = max(sum(pairs) / len(pairs), 0.0)
    w = FEEDBACK_WEIGHT * coherence ** 2
    cos = {c.id: c.cosine for c in candidates}
    to_centroid = sum(cos[f] for f in fed) / m
    centroid_sq = (m + 2 * sum(pairs)) / m ** 2
    norm = math.sqrt(max(1 + 2 * w * to_centroid + w * w * centroid_sq, 1e-12))
    return {c.id: (c.cosine + w * sum(similar.get((c.id, f), 0.0) for f in fed) / m) / norm
            + (first[c.id] - c.cosine) for c in candidates}


def anchor(final: dict[int, float], first: dict[int, float]) -> dict[int, float]:
    """`final` shifted so that its best equals the best of `first` (same order)."""
    if not final:
        return final
    shift = max(first.values()) - max(final.values())
    return {i: v + shift for i, v in final.items()}


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
