"""The measurement behind the "hybrid" ranking (patterns/rag/ranking.py): the dense top-100
chunks of each Cranfield and CISI query (exact search), with their cosine and full-text
`ts_rank`, scored offline with the product's `blend` and `choose` over a grid of weights. Only Cranfield and CISI are used; the FAQ set stays held out.

Run `bench/rag_retrieval.py --data-dir DIR` first (it ingests the collections), then:

    .venv/bin/python bench/rag_blend_grid.py DIR > bench/results/rag_blend_grid.txt

Lines: `lexical_weight lexical_scale per_document  cranfield nDCG@10  cisi nDCG@10  mean`.
(bench/results/rag_blend_grid.txt was made by this script's version in commit bbbed37, which
also tried pseudo-relevance feedback: two more columns first, PRF weight 0 = this grid.)
"""
from __future__ import annotations

import asyncio
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from bench.rag_retrieval import DATA, K_CHUNKS, load_cisi, load_cranfield, metrics  # noqa: E402
from bot.app import App  # noqa: E402
from bot.core.settings import Settings  # noqa: E402
from patterns.rag.ranking import Candidate, blend, choose  # noqa: E402

DEPTH = 100


async def candidates(app, c) -> list[dict]:
    """Per query: chunk ids, their document numbers, cosines, vectors and ts_rank."""
    engine = app.services.db.engine
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT c.id, d.name, c.embedding::text FROM kb_chunks c JOIN kb_documents d ON d.id = c.document_id "
            "WHERE c.tenant = :t ORDER BY c.id"), {"t": c.name})).all()
    ids = np.array([r[0] for r in rows])
    docs = np.array([int(r[1].rsplit("-", 1)[1].split(".")[0]) for r in rows])
    vecs = np.array([np.fromstring(r[2][1:-1], sep=",") for r in rows], dtype=np.float32)
    qv = np.array(await app.services.kb.embedder.embed(list(c.queries.values())), dtype=np.float32)
    out = []
    async with engine.connect() as conn:
        for (q, qtext), v in zip(c.queries.items(), qv):
            sims = vecs @ v
            top = np.argsort(-sims)[:DEPTH]
            tsr = dict((await conn.execute(text(
                "SELECT c.id, ts_rank(c.tsv, q.tq) FROM kb_chunks c, (SELECT CAST(replace(CAST(plainto_tsquery("
                "'english', :query) AS text), ' & ', ' | ') AS tsquery) AS tq) q WHERE c.id = ANY(:ids) AND c.tsv @@ q.tq"),
                {"query": qtext, "ids": [int(i) for i in ids[top]]})).all())
            out.append(dict(q=q, docs=docs[top], cos=sims[top], vecs=vecs[top],
                            ts=np.array([tsr.get(int(i), 0.0) for i in ids[top]], dtype=np.float32)))
    return out


def evaluate(cands, qrels, lex_w, lex_scale, per_doc) -> float:
    """Mean nDCG@10 with the product's own `blend` and `choose`."""
    total = 0.0
    for c in cands:
        rows = [(i, int(c["docs"][i]), blend(Candidate(i, int(c["docs"][i]), float(c["cos"][i]), float(c["ts"][i])),
                                             lexical_weight=lex_w, lexical_scale=lex_scale))
                for i in range(len(c["cos"]))]
        chosen = choose(rows, k=K_CHUNKS, per_document=per_doc)
        ranked = list(dict.fromkeys(int(c["docs"][i]) for i, _ in chosen))
        total += metrics(ranked, qrels[c["q"]])[0]
    return total / len(cands)


async def main(data_dir: str) -> None:
    cols = [load_cranfield(DATA / "cranfield"), load_cisi(DATA / "cisi")]
    async with await App.open(Settings(_env_file=None, data_dir=Path(data_dir))) as app:
        cands = {c.name: await candidates(app, c) for c in cols}
    grid = itertools.product((0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7), (0.01, 0.02, 0.05, 0.1), (1, 2, 30))
    for lex_w, lex_scale, per_doc in grid:
        got = [evaluate(cands[c.name], c.qrels, lex_w, lex_scale, per_doc) for c in cols]
        print(f"{lex_w:.2f} {lex_scale:.2f} {per_doc:2d}  {got[0]:.4f} {got[1]:.4f}  {sum(got) / 2:.4f}", flush=True)

if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
