"""Search latency and HNSW recall at scale, through the product's own search code.

100,000 chunks of 384-d vectors in one tenant plus 100,000 spread over nine others
(synthetic, clustered like real embeddings: 2,000 random unit centres, each vector a
centre plus Gaussian noise, normalised), loaded with COPY, then the HNSW index is built
with the given m / ef_construction. Queries are fresh points drawn the same way. For each
ef_search: p50/p95 of `KnowledgeStore.search_vector(mode="dense")` for the big tenant
(tenant filter + iterative index scan; query embedding excluded), and recall@10 against
exact search (the same query with index scans disabled).

    .venv/bin/python bench/rag_scale.py [--per-tenant 100000] [--queries 200] [--ef 40,100,200] [--m 16 --efc 64]

With `--cranfield-text` the chunks carry Cranfield abstracts (repeated) and the modes in
`--text-modes` are timed on Cranfield questions too: the modes take turns query by query, in
rotating order (a noisy neighbour on a shared machine slows them alike, and each goes first
— reading the index pages cold — equally often), `--rounds` times; reported are
the median p50/p95 over rounds. `--data-dir DIR` keeps the database: a second run with the
same DIR skips loading and indexing.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from bot.app import App  # noqa: E402
from bot.core.settings import Settings  # noqa: E402
from bot.core.embeddings import LOCAL_MODEL, LocalEmbedder  # noqa: E402
from patterns.rag.store import vector_literal  # noqa: E402

DIM = 384
BIG = "big"


def clustered(rng, centres: np.ndarray, n: int, noise: float) -> np.ndarray:
    idx = rng.integers(0, len(centres), n)
    v = centres[idx] + rng.normal(0, noise, (n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _tsv_escape(t: str) -> str:
    return t.replace("\\", "\\\\").replace("\t", " ").replace("\n", " ").replace("\r", " ")


async def load(app, rng, centres, per_tenant: int, noise: float, texts: list[str] | None = None) -> None:
    engine = app.services.db.engine
    async with engine.begin() as conn:
        await conn.execute(text("DROP INDEX IF EXISTS ix_kb_chunks_embedding_384"))
        tenants = [(BIG, per_tenant)] + [(f"other{i}", per_tenant // 9 + (1 if i < per_tenant % 9 else 0)) for i in range(9)]
        doc_ids = {}
        for t, _ in tenants:
            doc_ids[t] = (await conn.execute(text(
                "INSERT INTO kb_documents (tenant, name, content_hash, size_bytes, kind) VALUES (:t, 'synthetic.txt', repeat('0', 64), 0, 'txt') RETURNING id"
            ), {"t": t})).scalar()
    raw = await engine.raw_connection()
    try:
        conn = raw.driver_connection
        for t, n in tenants:
            vecs = clustered(rng, centres, n, noise)
            buf = io.StringIO()
            for i, v in enumerate(vecs):
                body = _tsv_escape(texts[i % len(texts)]) if texts else f"synthetic chunk {i}"
                buf.write(f"{doc_ids[t]}\t{t}\t{i}\t{body}\t12\t{LOCAL_MODEL}\t{DIM}\t{vector_literal(v.tolist())}\n")
            await conn.copy_to_table(
                "kb_chunks", source=io.BytesIO(buf.getvalue().encode()),
                columns=["document_id", "tenant", "ord", "text", "token_count", "model", "dim", "embedding"],
            )
    finally:
        raw.close()


async def build_index(app, m: int, efc: int) -> float:
    t = time.perf_counter()
    async with app.services.db.engine.begin() as conn:
        await conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
        await conn.execute(text(
            f"CREATE INDEX ix_kb_chunks_embedding_384 ON kb_chunks USING hnsw ((embedding::vector(384)) vector_cosine_ops) "
            f"WITH (m = {m}, ef_construction = {efc}) WHERE dim = 384"
        ))
        await conn.execute(text("ANALYZE kb_chunks"))
    return time.perf_counter() - t


async def exact(app, q: list[float], k: int) -> list[int]:
    async with app.services.db.engine.begin() as conn:
        await conn.execute(text("SET LOCAL enable_indexscan = off"))
        await conn.execute(text("SET LOCAL enable_bitmapscan = off"))
        rows = await conn.execute(text(
            "SELECT id FROM kb_chunks WHERE tenant = :t AND dim = 384 "
            "ORDER BY embedding::vector(384) <=> CAST(:q AS vector(384)) LIMIT :k"
        ), {"t": BIG, "q": vector_literal(q), "k": k})
        return [r[0] for r in rows]


async def run(args) -> dict:
    rng = np.random.default_rng(42)
    centres = rng.normal(0, 1, (2000, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="aibot-scale-"))
    settings = Settings(_env_file=None, data_dir=data_dir, database_url=args.database_url)
    out: dict = {"per_tenant": args.per_tenant, "others": args.per_tenant, "m": args.m, "ef_construction": args.efc}
    async with await App.open(settings) as app:
        kb = app.services.kb
        t = time.perf_counter()
        texts = queries_text = None
        if args.cranfield_text:
            from bench.rag_cranfield import DEFAULT_DATA, parse_docs, parse_queries

            texts = [f"{t}. {a}" for t, a in parse_docs(DEFAULT_DATA / "cran.all.1400").values() if (t or a).strip()]
            queries_text = parse_queries(DEFAULT_DATA / "cran.qry")[: args.text_queries]
        async with app.services.db.engine.connect() as conn:
            loaded = (await conn.execute(text("SELECT count(*) FROM kb_chunks WHERE tenant = :t"), {"t": BIG})).scalar()
        if loaded != args.per_tenant:
            await load(app, rng, centres, args.per_tenant, args.noise, texts)
            out["load_seconds"] = round(time.perf_counter() - t, 1)
            out["index_build_seconds"] = round(await build_index(app, args.m, args.efc), 1)
        queries = clustered(rng, centres, args.queries, args.noise).tolist()
        truth = [await exact(app, q, 10) for q in queries]
        for ef in args.ef:
            kb.settings = kb.settings.model_copy(update={"ef_search": ef})
            p50s, p95s, recalls = [], [], []
            for _round in range(args.rounds):
                lat, rec = [], []
                for q, true in zip(queries, truth):
                    t = time.perf_counter()
                    found = await kb.search_vector(tenant=BIG, query="", vector=q, k=10, mode="dense")
                    lat.append((time.perf_counter() - t) * 1000)
                    rec.append(len({p.chunk_id for p in found} & set(true)) / 10)
                lat.sort()
                p50s.append(lat[len(lat) // 2])
                p95s.append(lat[int(len(lat) * 0.95)])
                recalls.append(sum(rec) / len(rec))
            out[f"ef_search={ef}"] = {
                "p50_ms": round(statistics.median(p50s), 2), "p95_ms": round(statistics.median(p95s), 2),
                "recall@10": round(statistics.median(recalls), 4), "rounds": args.rounds,
            }
        if queries_text:
            # full-text and hybrid latency on real text (Cranfield abstracts repeated to fill
            # the tenant), the modes taking turns query by query
            modes = args.text_modes.split(",")
            per_round: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
            for _round in range(args.rounds):
                lat: dict[str, list[float]] = {m: [] for m in modes}
                for i, (q, v) in enumerate(zip(queries_text, queries)):
                    # the first search of a question reads the index pages the others then find
                    # in memory: the order rotates, so every mode goes first equally often
                    for mode in modes[i % len(modes):] + modes[: i % len(modes)]:
                        t = time.perf_counter()
                        await kb.search_vector(tenant=BIG, query=q, vector=v, k=10, mode=mode)
                        lat[mode].append((time.perf_counter() - t) * 1000)
                for mode, xs in lat.items():
                    xs.sort()
                    per_round[mode].append((xs[len(xs) // 2], xs[int(len(xs) * 0.95)]))
            for mode, rows in per_round.items():
                out[f"{mode}_p50_ms"] = round(statistics.median(r[0] for r in rows), 1)
                out[f"{mode}_p95_ms"] = round(statistics.median(r[1] for r in rows), 1)
        emb = LocalEmbedder()
        emb.encode(["warm up"])
        times = []
        for i in range(50):
            t = time.perf_counter()
            emb.encode([f"how do I rotate the API keys of project {i}?"])
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        out["query_embedding_ms_p50"] = round(times[len(times) // 2], 2)
        out["query_embedding_ms_p95"] = round(times[int(len(times) * 0.95)], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-tenant", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--ef", type=lambda s: [int(x) for x in s.split(",")], default=[40, 100, 200])
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--efc", type=int, default=64)
    ap.add_argument("--noise", type=float, default=0.06, help="per-dimension noise around a centre")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cranfield-text", action="store_true", help="give the chunks Cranfield text and time full-text/hybrid too")
    ap.add_argument("--text-queries", type=int, default=30, help="Cranfield queries timed in full-text/hybrid mode")
    ap.add_argument("--text-modes", default="fulltext,rrf,hybrid", help="modes timed on real text")
    ap.add_argument("--database-url", default=None, help="default: a fresh embedded server")
    ap.add_argument("--data-dir", type=Path, default=None, help="keep the database here (a rerun skips loading)")
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
