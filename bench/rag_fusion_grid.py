"""The measurement behind the hybrid default: dense and full-text rankings of the Cranfield
queries, fused offline with a grid of RRF constants, full-text weights and depths.

Run `bench/rag_cranfield.py --data-dir DIR` first (it ingests the collection into DIR), then:

    .venv/bin/python bench/rag_fusion_grid.py DIR > bench/results/rag_fusion_grid.txt

Lines: `rrf <fulltext ranking> <k> <fulltext weight> <depth> [nDCG@10, recall@10, MRR]`.
"""
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from bench.rag_cranfield import DEFAULT_DATA, metrics, parse_docs, parse_queries, parse_qrels  # noqa: E402
from bot.app import App  # noqa: E402
from bot.core.settings import Settings  # noqa: E402

RANKS = {
 "cd": "ts_rank_cd(c.tsv, q.tq)",
 "cd32": "ts_rank_cd(c.tsv, q.tq, 32)",
 "r1": "ts_rank(c.tsv, q.tq, 1)",
 "r0": "ts_rank(c.tsv, q.tq)",
}
async def main(dd):
    data = DEFAULT_DATA
    parse_docs(data / "cran.all.1400")
    queries = parse_queries(data / "cran.qry")
    qrels = parse_qrels(data / "cranqrel")
    s = Settings(_env_file=None, data_dir=Path(dd))
    async with await App.open(s) as app:
        kb = app.services.kb
        async with app.services.db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT c.id, d.name FROM kb_chunks c JOIN kb_documents d ON d.id=c.document_id WHERE c.tenant='cranfield'"))).all()
        c2d = {r[0]: int(r[1][5:9]) for r in rows}
        print("chunks", len(c2d))
        vecs = await kb.embedder.embed(queries)
        dense = []
        for q, v in zip(queries, vecs):
            f = await kb.search_vector(tenant="cranfield", query=q, vector=v, k=100, mode="dense")
            dense.append([p.chunk_id for p in f])
        fts = {}
        for name, rank in RANKS.items():
            lists = []
            async with app.services.db.engine.connect() as conn:
                for q in queries:
                    r = (await conn.execute(text(f"""SELECT c.id FROM kb_chunks c, (SELECT CAST(replace(CAST(plainto_tsquery('english', :query) AS text), ' & ', ' | ') AS tsquery) AS tq) q
                      WHERE c.tenant='cranfield' AND c.tsv @@ q.tq ORDER BY {rank} DESC, c.id LIMIT 100"""), {"query": q})).all()
                    lists.append([x[0] for x in r])
            fts[name] = lists
    def ev(lists):
        tot=[0,0,0]
        for qi, l in enumerate(lists, 1):
            ranked=[]
            for c in l:
                d=c2d[c]
                if d not in ranked: ranked.append(d)
            for i,m in enumerate(metrics(ranked, qrels.get(qi,{}))): tot[i]+=m
        return [round(t/len(lists),4) for t in tot]
    print("dense", ev(dense))
    for name in RANKS: print("fts", name, ev(fts[name]))
    for name in RANKS:
        for K in (10, 30, 60):
            for w in (0.2, 0.35, 0.5, 0.75, 1.0):
                for depth in (30, 100):
                    fused=[]
                    for dl, fl in zip(dense, fts[name]):
                        sc={}
                        for r,c in enumerate(dl[:depth],1): sc[c]=sc.get(c,0)+1/(K+r)
                        for r,c in enumerate(fl[:depth],1): sc[c]=sc.get(c,0)+w/(K+r)
                        fused.append(sorted(sc, key=lambda c:-sc[c]))
                    print("rrf", name, K, w, depth, ev(fused))
if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
