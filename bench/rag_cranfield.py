"""Retrieval quality on the Cranfield collection, through the product's own code.

The 1,400 abstracts are ingested with `KnowledgeStore.ingest` (as Markdown: the title as
heading, the abstract as body: extraction, chunking, local embeddings, PostgreSQL), the
225 queries go through `KnowledgeStore.search_vector` in three modes: dense (HNSW with
iterative scan), full-text (tsvector, ts_rank_cd) and hybrid (their reciprocal rank
fusion). A document's rank is that of its best chunk. Metrics: nDCG@10 (graded: relevance
1..4 → gain 4..1, -1 → 0), recall@10 and MRR (relevant = relevance 1..4).

    .venv/bin/python bench/rag_cranfield.py [--data ../shared/data/cranfield] [--database-url URL]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app import App  # noqa: E402
from bot.core.settings import Settings  # noqa: E402

TENANT = "cranfield"
DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cranfield"


def parse_docs(path: Path) -> dict[int, tuple[str, str]]:
    docs = {}
    for block in re.split(r"^\.I ", path.read_text(encoding="utf-8", errors="replace"), flags=re.M)[1:]:
        num = int(block.split("\n", 1)[0])
        fields = dict(re.findall(r"^\.([TABW])\n(.*?)(?=^\.[TABW]\n|\Z)", block, flags=re.M | re.S))
        title = " ".join(fields.get("T", "").split()).rstrip(" .")
        docs[num] = (title, fields.get("W", "").strip())
    return docs


def parse_queries(path: Path) -> list[str]:
    blocks = re.split(r"^\.I ", path.read_text(encoding="utf-8"), flags=re.M)[1:]
    return [" ".join(b.split(".W", 1)[1].split()) for b in blocks]


def parse_qrels(path: Path) -> dict[int, dict[int, int]]:
    qrels: dict[int, dict[int, int]] = defaultdict(dict)
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            q, d, r = map(int, parts)
            qrels[q][d] = 5 - r if 1 <= r <= 4 else 0
    return qrels


def metrics(ranked: list[int], rel: dict[int, int]) -> tuple[float, float, float]:
    gains = [rel.get(d, 0) for d in ranked[:10]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted((g for g in rel.values() if g > 0), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    relevant = {d for d, g in rel.items() if g > 0}
    recall = len(relevant & set(ranked[:10])) / len(relevant) if relevant else 0.0
    mrr = next((1 / (i + 1) for i, d in enumerate(ranked) if d in relevant), 0.0)
    return (dcg / idcg if idcg else 0.0), recall, mrr


async def run(data: Path, database_url: str | None, modes: list[str], data_dir: Path | None = None) -> dict:
    docs = parse_docs(data / "cran.all.1400")
    queries = parse_queries(data / "cran.qry")
    qrels = parse_qrels(data / "cranqrel")
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="aibot-cran-"))
    settings = Settings(_env_file=None, data_dir=data_dir, database_url=database_url)
    out: dict = {"documents": len(docs), "queries": len(queries)}
    async with await App.open(settings) as app:
        kb = app.services.kb
        t0 = time.perf_counter()
        names = {}
        chunks = 0
        for num, (title, abstract) in sorted(docs.items()):
            if not (title or abstract).strip():
                out.setdefault("skipped_empty", []).append(num)  # a few records have no text at all
                continue
            body = f"# {title or 'untitled'}\n\n{abstract or title}\n".encode()
            res = await kb.ingest(tenant=TENANT, name=f"cran-{num:04d}.md", data=body, added_by="bench")
            names[res.document_id] = num
            chunks += res.chunks
        out["ingest_seconds"] = round(time.perf_counter() - t0, 1)
        out["chunks"] = chunks
        vectors = await kb.embedder.embed(queries)
        for mode in modes:
            sums = [0.0, 0.0, 0.0]
            lat = []
            for qi, (q, v) in enumerate(zip(queries, vectors), start=1):
                t = time.perf_counter()
                found = await kb.search_vector(tenant=TENANT, query=q, vector=v, k=30, mode=mode)
                lat.append(time.perf_counter() - t)
                ranked: list[int] = []
                for p in found:
                    d = names[p.document_id]
                    if d not in ranked:
                        ranked.append(d)
                for i, m in enumerate(metrics(ranked, qrels.get(qi, {}))):
                    sums[i] += m
            n = len(queries)
            lat.sort()
            out[mode] = {
                "ndcg@10": round(sums[0] / n, 4), "recall@10": round(sums[1] / n, 4), "mrr": round(sums[2] / n, 4),
                "search_ms_p50": round(lat[len(lat) // 2] * 1000, 2),
            }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--database-url", default=None, help="default: a fresh embedded server")
    ap.add_argument("--modes", default="dense,fulltext,hybrid")
    ap.add_argument("--data-dir", type=Path, default=None, help="keep the embedded database here (a rerun skips re-embedding: same content)")
    args = ap.parse_args()
    result = asyncio.run(run(args.data, args.database_url, args.modes.split(","), args.data_dir))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
