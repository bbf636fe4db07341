"""The measurement behind the default hybrid ranking (patterns/rag/ranking.py: word share,
then coherence-weighted pseudo-relevance feedback): the dense top-100 chunks of each
Cranfield and CISI question (exact search over the stored vectors), with the lexemes each
holds and the knowledge base's word statistics (kb_lexemes / kb_lexicon), scored offline
with the product's own `match`, `feedback` and `anchor` over a grid of its constants.
Only Cranfield and CISI are used; the FAQ set stays held out.

Run `bench/rag_retrieval.py --data-dir DIR` first (it ingests the collections), then:

    .venv/bin/python bench/rag_hybrid_grid.py DIR > bench/results/rag_hybrid_grid.txt

Lines: `word_weight feedback feedback_weight  cranfield nDCG@10  cisi nDCG@10`; the
defaults are marked with `*`. They were picked on an earlier version of this grid, with a
passage's BM25 length counted in lexeme positions, where (1.0, 3, 1.5) was the best point of
the coherence-weighted feedback on both collections; the product then switched to
distinct lexemes (`length(tsvector)`, much cheaper at search time), and this grid is the
re-run with that length: 21 of its 54 points meet both targets (docs/benchmarks.md).
"""
from __future__ import annotations

import asyncio
import itertools
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from bench.rag_retrieval import DATA, K_CHUNKS, load_cisi, load_cranfield, metrics  # noqa: E402
from bot.app import App  # noqa: E402
from bot.core.settings import Settings  # noqa: E402
from patterns.rag import ranking  # noqa: E402

DEPTH = 100


def _lexemes(tsv: str) -> dict[str, int]:
    return {m[1]: len(m[2].split(",")) if m[2] else 1 for m in re.finditer(r"'((?:[^']|'')*)'(?::([0-9A-D,]+))?", tsv)}


async def collect(data_dir: Path) -> dict:
    """Per collection: chunk ids, document numbers, vectors, lexemes; per question: its
    vector, its lexemes and the relevance judgements."""
    out = {}
    settings = Settings(_env_file=None, data_dir=data_dir)
    async with await App.open(settings) as app:
        kb = app.services.kb
        async with app.services.db.engine.connect() as conn:
            for c in (load_cranfield(DATA / "cranfield"), load_cisi(DATA / "cisi")):
                rows = (await conn.execute(text(
                    "SELECT c.id, d.name, c.embedding::text, c.tsv::text, length(c.tsv) FROM kb_chunks c "
                    "JOIN kb_documents d ON d.id = c.document_id WHERE c.tenant = :t ORDER BY c.id"), {"t": c.name})).all()
                stats = (await conn.execute(text("SELECT chunks, words FROM kb_lexicon WHERE tenant = :t"),
                                            {"t": c.name})).one()
                qs = list(c.queries)
                vectors = await kb.embedder.embed([c.queries[q] for q in qs])
                questions = []
                for q, v in zip(qs, vectors):
                    words = (await conn.execute(text(
                        "SELECT q.lexeme, coalesce(l.chunks, 0) FROM (SELECT DISTINCT lexeme FROM "
                        "unnest(to_tsvector('english', :query))) q LEFT JOIN kb_lexemes l "
                        "ON l.tenant = :t AND l.lexeme = q.lexeme"), {"query": c.queries[q], "t": c.name})).all()
                    questions.append((q, np.array(v, dtype=np.float32), dict(words)))
                out[c.name] = dict(
                    ids=[r[0] for r in rows], docs=[int(r[1].rsplit("-", 1)[1].split(".")[0]) for r in rows],
                    emb=np.array([np.fromstring(r[2][1:-1], sep=",") for r in rows], dtype=np.float32),
                    words=[_lexemes(r[3]) for r in rows], length=[r[4] for r in rows],
                    chunks=stats[0], total=stats[1], questions=questions, qrels=c.qrels)
    return out


def ndcg(col: dict) -> float:
    """nDCG@10 of the hybrid ranking with the ranking module's current constants."""
    scores = []
    for q, qv, holding in col["questions"]:
        lexicon = ranking.Lexicon(chunks=col["chunks"], words=col["total"], holding=holding)
        cos = col["emb"] @ qv
        top = np.argsort(-cos)[:DEPTH]
        cands = [ranking.Candidate(int(i), col["docs"][i], float(cos[i]),
                                   words={w: n for w, n in col["words"][i].items() if w in holding},
                                   length=col["length"][i]) for i in top]
        first = {c.id: ranking.match(c, lexicon) for c in cands}
        order = sorted(first, key=lambda i: (-first[i], i))
        pool = set(order[: max(ranking.FEEDBACK_POOL, 2 * K_CHUNKS)])
        cands = [c for c in cands if c.id in pool]
        fed = order[: ranking.FEEDBACK]
        similar = {(c.id, f): float(col["emb"][c.id] @ col["emb"][f]) for c in cands for f in fed}
        final = ranking.anchor(ranking.feedback(cands, first, similar, fed), first)
        chosen = ranking.choose([(c.id, c.document_id, final[c.id]) for c in cands], k=K_CHUNKS, per_document=2)
        ranked: list[int] = []
        for i, _ in chosen:
            if col["docs"][i] not in ranked:
                ranked.append(col["docs"][i])
        scores.append(metrics(ranked, col["qrels"][q])[0])
    return float(np.mean(scores))


def main() -> None:
    data = asyncio.run(collect(Path(sys.argv[1])))
    defaults = (ranking.WORD_WEIGHT, ranking.FEEDBACK, ranking.FEEDBACK_WEIGHT)
    grid = itertools.product((0.7, 1.0, 1.3), (2, 3, 5), (0.0, 0.5, 1.0, 1.5, 2.0, 3.0))
    for word_weight, feedback, feedback_weight in grid:
        ranking.WORD_WEIGHT, ranking.FEEDBACK, ranking.FEEDBACK_WEIGHT = word_weight, feedback, feedback_weight
        mark = "*" if (word_weight, feedback, feedback_weight) == defaults else " "
        print(f"{word_weight:.1f} {feedback} {feedback_weight:.1f}  {ndcg(data['cranfield']):.4f}  "
              f"{ndcg(data['cisi']):.4f} {mark}", flush=True)


if __name__ == "__main__":
    main()
