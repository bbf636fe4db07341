"""The measurement behind the "hybrid" ranking (patterns/rag/ranking.py): the dense top-100
chunks of each Cranfield and CISI query, with their cosine, their cosine to the centroid of
the top few (pseudo-relevance feedback) and their full-text `ts_rank`, scored offline with a
grid of weights. Only Cranfield and CISI are used; the FAQ set stays held out.

Run `bench/rag_retrieval.py --data-dir DIR` first (it ingests the collections), then:

    .venv/bin/python bench/rag_blend_grid.py DIR > bench/results/rag_blend_grid.txt

Lines: `prf_weight prf_depth lexical_weight lexical_scale per_doc  cranfield nDCG@10  cisi nDCG@10  mean`.
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


def evaluate(cands, qrels, prf_w, prf_m, lex_w, lex_scale, per_doc) -> float:
    """Mean nDCG@10 with the product's own `blend` and `choose`."""
    total = 0.0
    for c in cands:
        cen = c["vecs"][:prf_m].mean(axis=0)
        cen_cos = c["vecs"] @ (cen / np.linalg.norm(cen))
        rows = [(i, int(c["docs"][i]), blend(Candidate(i, int(c["docs"][i]), float(c["cos"][i]), float(cen_cos[i]),
                                                       float(c["ts"][i])),
                                             lexical_weight=lex_w, lexical_scale=lex_scale, prf_weight=prf_w))
                for i in range(len(c["cos"]))]
        chosen = choose(rows, k=K_CHUNKS, per_document=per_doc)
        ranked = list(dict.fromkeys(int(c["docs"][i]) for i, _ in chosen))
        total += metrics(ranked, qrels[c["q"]])[0]
    return total / len(cands)


async def main(data_dir: str) -> None:
    cols = [load_cranfield(DATA / "cranfield"), load_cisi(DATA / "cisi")]
    async with await App.open(Settings(_env_file=None, data_dir=Path(data_dir))) as app:
        cands = {c.name: await candidates(app, c) for c in cols}
    grid = itertools.product((0.0, 0.5, 1.0, 2.0), (3, 5), (0.0, 0.05, 0.1, 0.15, 0.2, 0.3), (0.02, 0.05, 0.1), (1, 2, 30))
    for prf_w, prf_m, lex_w, lex_scale, per_doc in grid:
        if (not prf_w and prf_m != 3) or (not lex_w and lex_scale != 0.05):
            continue
        got = [evaluate(cands[c.name], c.qrels, prf_w, prf_m, lex_w, lex_scale, per_doc) for c in cols]
        print(f"{prf_w:.2f} {prf_m:2d} {lex_w:.2f} {lex_scale:.2f} {per_doc:2d}  {got[0]:.4f} {got[1]:.4f}  "
              f"{sum(got) / 2:.4f}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
