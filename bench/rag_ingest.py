"""Ingestion throughput (chunks/s) against the embedding model's own encode rate.

Documents: the Cranfield abstracts grouped into Markdown files of 100 abstracts each (one
heading per abstract), a realistic shape for uploaded manuals. In the same process and
alternating, each round times (a) the whole pipeline, `KnowledgeStore.ingest` for every
file (hash, extraction, chunking, embedding, one transaction per document with the HNSW
index maintained), into a fresh tenant, and (b) the model alone encoding exactly the texts
the pipeline embeds, with the same batch size. Overhead = (a) / (b) - 1, medians of rounds.

    .venv/bin/python bench/rag_ingest.py [--rounds 3] [--per-file 100]

Small files: `--per-file 1 --limit 300` makes one one-paragraph file per abstract (300 of
them); then each round also times `KnowledgeStore.ingest_many` (what `aibot kb add DIR`
uses: small files embedded together, one transaction per file) and the model encoding all
texts in one batched call, and reports ingest_many's rate as a share of that batched rate.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rag_cranfield import DEFAULT_DATA, parse_docs  # noqa: E402
from bot.app import App  # noqa: E402
from patterns.rag.chunking import chunk  # noqa: E402
from bot.core.settings import Settings  # noqa: E402
from patterns.rag.extract import extract  # noqa: E402
from patterns.rag.store import embed_text  # noqa: E402


async def run(args) -> dict:
    docs = parse_docs(args.data / "cran.all.1400")
    items = [(n, ta) for n, ta in sorted(docs.items()) if (ta[0] or ta[1]).strip()][: args.limit]
    files = []
    for i in range(0, len(items), args.per_file):
        body = "\n\n".join(f"# {t or 'untitled'}\n\n{a}" for _, (t, a) in items[i : i + args.per_file])
        files.append((f"cranfield-part-{i // args.per_file + 1:02d}.md", body.encode()))
    settings = Settings(_env_file=None, data_dir=Path(tempfile.mkdtemp(prefix="aibot-ingest-")), database_url=args.database_url)
    async with await App.open(settings) as app:
        kb = app.services.kb
        texts = []
        for name, data in files:
            ex = extract(name, data, kb.limits)
            texts.append([embed_text(name, c) for c in chunk(ex.blocks, max_tokens=kb.settings.chunk_tokens, overlap=kb.settings.chunk_overlap)])
        n_chunks = sum(len(t) for t in texts)
        await kb.embedder.embed(["warm up"])
        pipeline, model, many, batched = [], [], [], []
        cpu = {"per_file": [], "ingest_many": [], "model_batched": []}  # process CPU seconds: robust to other load
        for r in range(args.rounds):
            t, c = time.perf_counter(), time.process_time()
            for name, data in files:
                await kb.ingest(tenant=f"round{r}", name=name, data=data)
            pipeline.append(time.perf_counter() - t)
            cpu["per_file"].append(time.process_time() - c)
            t = time.perf_counter()
            for batch in texts:  # one encode call per document, as the pipeline does
                await kb.embedder.embed(batch)
            model.append(time.perf_counter() - t)
            t, c = time.perf_counter(), time.process_time()
            async for _ in kb.ingest_many(tenant=f"many{r}", items=files):
                pass
            many.append(time.perf_counter() - t)
            cpu["ingest_many"].append(time.process_time() - c)
            t, c = time.perf_counter(), time.process_time()
            await kb.embedder.embed([x for batch in texts for x in batch])  # all texts, batched
            batched.append(time.perf_counter() - t)
            cpu["model_batched"].append(time.process_time() - c)
    ratios = [p / m for p, m in zip(pipeline, model)]
    return {
        "files": len(files), "chunks": n_chunks, "rounds": args.rounds,
        "pipeline_chunks_per_s": round(n_chunks / statistics.median(pipeline), 1),
        "model_chunks_per_s": round(n_chunks / statistics.median(model), 1),
        "pipeline_overhead_pct": round((statistics.median(ratios) - 1) * 100, 1),
        "ingest_many_chunks_per_s": round(n_chunks / statistics.median(many), 1),
        "model_batched_chunks_per_s": round(n_chunks / statistics.median(batched), 1),
        "ingest_many_share_of_batched_pct": round(statistics.median(b / m for b, m in zip(batched, many)) * 100, 1),
        "per_file_share_of_batched_pct": round(statistics.median(b / p for b, p in zip(batched, pipeline)) * 100, 1),
        "cpu_ingest_many_share_of_batched_pct": round(
            statistics.median(b / m for b, m in zip(cpu["model_batched"], cpu["ingest_many"])) * 100, 1),
        "cpu_per_file_share_of_batched_pct": round(
            statistics.median(b / p for b, p in zip(cpu["model_batched"], cpu["per_file"])) * 100, 1),
        "rounds_cpu_seconds": {k: [round(x, 2) for x in v] for k, v in cpu.items()},
        "rounds_seconds": {"per_file": [round(x, 2) for x in pipeline], "ingest_many": [round(x, 2) for x in many],
                           "model_batched": [round(x, 2) for x in batched]},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--per-file", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="only the first N abstracts (bounded runs)")
    ap.add_argument("--database-url", default=None)
    print(json.dumps(asyncio.run(run(ap.parse_args())), indent=2))


if __name__ == "__main__":
    main()
