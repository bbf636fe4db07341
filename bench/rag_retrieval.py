"""Retrieval quality, "not in the knowledge base" calibration and search latency, on three
collections, for every retrieval mode of the product's store.

Collections (each ingested into its own tenant through `KnowledgeStore.ingest_many`, as
Markdown: title as heading, abstract as body):

- Cranfield (aeronautics, 1,400 abstracts, 225 graded queries) and CISI (library science,
  1,460 abstracts, the 76 judged of its 112 queries) from `../shared/data`;
- `bench/data/faq_heldout.json`: short FAQ-style documents with one known answer per
  question, written for this benchmark and never used to choose a setting (held out).

Per collection and mode: nDCG@10 (Cranfield graded 1..4 → gain 4..1; CISI and FAQ binary),
recall@10 and MRR over documents (a document ranks where its best chunk ranks), and search
latency p50/p95 (`search_vector`, query embedding excluded). References recomputed here,
outside the product (whole documents, exact search, all in memory): dense cosine with the
same embedding model, Okapi BM25 (k1 1.2, b 0.75) and their RRF (k 60).

Abstention ("not in the knowledge base"): the best passage's `score` for on-topic questions
(a collection's own questions against its knowledge base) and off-topic ones (Cranfield's
against CISI, CISI's against Cranfield, both against the FAQ). Reported: the error rates
at the configured threshold (`AIBOT_KB_MIN_SCORE`) — off-topic wrongly answerable,
on-topic wrongly "not in the knowledge base" — and a sweep over thresholds on Cranfield +
CISI only (the FAQ set is held out), to choose it.

    .venv/bin/python bench/rag_retrieval.py --data-dir /tmp/rag-bench [--queries N] [--modes dense,fulltext,rrf,hybrid]

`--data-dir` keeps the embedded database: a rerun finds the same documents unchanged and
skips ingestion. `--queries N` takes every n-th query so that about N remain per
collection (bounded runs on a shared machine).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rag_cranfield import parse_docs as parse_cran_docs  # noqa: E402
from bench.rag_cranfield import parse_qrels as parse_cran_qrels  # noqa: E402
from bench.rag_cranfield import parse_queries as parse_cran_queries  # noqa: E402
from bot.app import App  # noqa: E402
from bot.core.settings import Settings  # noqa: E402

DATA = ROOT / ".." / "shared" / "data"
FAQ = ROOT / "bench" / "data" / "faq_heldout.json"
K_CHUNKS = 30  # chunks asked for; documents are ranked from them


class Collection:
    def __init__(self, name: str, docs: dict[int, tuple[str, str]], queries: dict[int, str],
                 qrels: dict[int, dict[int, int]]) -> None:
        self.name = name
        self.docs = {d: tb for d, tb in docs.items() if (tb[0] or tb[1]).strip()}
        self.qrels = {q: r for q, r in qrels.items() if any(g > 0 for g in r.values())}
        self.queries = {q: t for q, t in queries.items() if q in self.qrels}

    def doc_name(self, num: int) -> str:
        return f"{self.name}-{num:04d}.md"

    def markdown(self, num: int) -> bytes:
        title, body = self.docs[num]
        return f"# {title or 'untitled'}\n\n{body or title}\n".encode()


def load_cranfield(path: Path) -> Collection:
    docs = parse_cran_docs(path / "cran.all.1400")
    queries = dict(enumerate(parse_cran_queries(path / "cran.qry"), start=1))
    return Collection("cranfield", docs, queries, parse_cran_qrels(path / "cranqrel"))


def _fields(block: str) -> dict[str, str]:
    return {m[0]: m[1] for m in re.findall(r"^\.([A-Z])\n(.*?)(?=^\.[A-Z]\n|\Z)", block, flags=re.M | re.S)}


def load_cisi(path: Path) -> Collection:
    docs, queries = {}, {}
    for block in re.split(r"^\.I ", (path / "CISI.ALL").read_text(errors="replace"), flags=re.M)[1:]:
        num, rest = block.split("\n", 1)
        f = _fields(rest)
        docs[int(num)] = (" ".join(f.get("T", "").split()).rstrip(" ."), " ".join(f.get("W", "").split()))
    for block in re.split(r"^\.I ", (path / "CISI.QRY").read_text(errors="replace"), flags=re.M)[1:]:
        num, rest = block.split("\n", 1)
        queries[int(num)] = " ".join(_fields(rest).get("W", "").split())
    qrels: dict[int, dict[int, int]] = defaultdict(dict)
    for line in (path / "CISI.REL").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2:
            qrels[int(parts[0])][int(parts[1])] = 1
    return Collection("cisi", docs, queries, qrels)


def load_faq(path: Path) -> Collection:
    raw = json.loads(path.read_text())
    docs = {i: (d["title"], d["text"]) for i, d in enumerate(raw["documents"], start=1)}
    by_title = {d["title"]: i for i, d in enumerate(raw["documents"], start=1)}
    queries = {i: q["question"] for i, q in enumerate(raw["questions"], start=1)}
    qrels = {i: {by_title[q["answer_in"]]: 1} for i, q in enumerate(raw["questions"], start=1)}
    return Collection("faq", docs, queries, qrels)


def subsample(c: Collection, n: int | None) -> None:
    if n and len(c.queries) > n:
        step = len(c.queries) / n
        keep = sorted(c.queries)[:: max(1, int(step))][:n] if step >= 2 else sorted(c.queries)[:n]
        c.queries = {q: c.queries[q] for q in keep}


# ----------------------------------------------------------------------------- metrics


def metrics(ranked: list[int], rel: dict[int, int]) -> tuple[float, float, float]:
    """nDCG@10, recall@10, MRR of a ranked list of document numbers."""
    gains = [rel.get(d, 0) for d in ranked[:10]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted((g for g in rel.values() if g > 0), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    relevant = {d for d, g in rel.items() if g > 0}
    recall = len(relevant & set(ranked[:10])) / len(relevant) if relevant else 0.0
    mrr = next((1 / (i + 1) for i, d in enumerate(ranked) if d in relevant), 0.0)
    return (dcg / idcg if idcg else 0.0), recall, mrr


def mean_metrics(rows: list[tuple[float, float, float]]) -> dict:
    n = max(len(rows), 1)
    return {name: round(sum(r[i] for r in rows) / n, 4) for i, name in enumerate(("ndcg@10", "recall@10", "mrr"))}


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")


# ----------------------------------------------------------------------------- references

_STOP = set("a an and are as at be by for from has have how in is it its of on or that the this to was were what when "
            "which who why with do does can there their any been not but into than these those such".split())


def tokens(text: str) -> list[str]:
    return [t for t in re.findall(r"[a-z0-9]+", text.lower()) if t not in _STOP and len(t) > 1]


class BM25:
    def __init__(self, docs: dict[int, str], k1: float = 1.2, b: float = 0.75) -> None:
        self.ids = list(docs)
        self.tf = [Counter(tokens(docs[d])) for d in self.ids]
        self.len = np.array([sum(c.values()) for c in self.tf], dtype=float)
        df = Counter(t for c in self.tf for t in c)
        n = len(self.ids)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self.k1, self.b, self.avg = k1, b, float(self.len.mean())

    def rank(self, query: str) -> list[int]:
        scores = np.zeros(len(self.ids))
        for t in set(tokens(query)):
            if t not in self.idf:
                continue
            tf = np.array([c.get(t, 0) for c in self.tf], dtype=float)
            scores += self.idf[t] * tf * (self.k1 + 1) / (tf + self.k1 * (1 - self.b + self.b * self.len / self.avg))
        order = np.argsort(-scores, kind="stable")
        return [self.ids[i] for i in order[:100] if scores[i] > 0]


def rrf(*rankings: list[int], k: int = 60) -> list[int]:
    s: dict[int, float] = defaultdict(float)
    for r in rankings:
        for i, d in enumerate(r, start=1):
            s[d] += 1 / (k + i)
    return sorted(s, key=lambda d: -s[d])


def references(c: Collection, encode, qvecs: dict[int, np.ndarray]) -> dict:
    ids = list(c.docs)
    texts = [f"{c.docs[d][0]}\n{c.docs[d][1]}" for d in ids]
    dv = np.array(encode(texts), dtype=np.float32)
    bm = BM25({d: t for d, t in zip(ids, texts)})
    rows = {"dense": [], "bm25": [], "rrf": []}
    for q, text in c.queries.items():
        dense = [ids[i] for i in np.argsort(-(dv @ qvecs[q]))[:100]]
        lex = bm.rank(text)
        for name, ranked in (("dense", dense), ("bm25", lex), ("rrf", rrf(dense, lex))):
            rows[name].append(metrics(ranked, c.qrels[q]))
    return {name: mean_metrics(r) for name, r in rows.items()}


# ----------------------------------------------------------------------------- product


async def ingest(kb, c: Collection) -> tuple[dict[int, int], float, int]:
    """Document id → document number; seconds; chunks."""
    t0 = time.perf_counter()
    items = [(c.doc_name(n), c.markdown(n)) for n in sorted(c.docs)]
    results = [r async for _, r in kb.ingest_many(tenant=c.name, items=items, added_by="bench")]
    names, chunks = {}, 0
    for r in results:
        stored = r.same_as or r.name  # "unchanged": the name it is stored under
        names[r.document_id] = int(stored.rsplit("-", 1)[1].split(".")[0])
        chunks += r.chunks
    return names, time.perf_counter() - t0, chunks


async def run_mode(kb, c: Collection, kb_name: str, queries: dict[int, str], vectors: dict[int, list[float]],
                   mode: str, names: dict[int, int]):
    """Per query: (ranked document numbers, best score), and latencies."""
    out, lat = {}, []
    for q, text in queries.items():
        t = time.perf_counter()
        found = await kb.search_vector(tenant=kb_name, query=text, vector=vectors[q], k=K_CHUNKS, mode=mode)
        lat.append(time.perf_counter() - t)
        ranked: list[int] = []
        for p in found:
            d = names[p.document_id]
            if d not in ranked:
                ranked.append(d)
        best = max((p.score for p in found), default=float("-inf"))
        out[q] = (ranked, best)
    return out, lat


def sweep(on: list[float], off: list[float]) -> list[dict]:
    rows = []
    for t in np.arange(0.0, 1.0001, 0.01):
        rows.append({"threshold": round(float(t), 2),
                     "off_topic_answerable": round(sum(s >= t for s in off) / len(off), 4),
                     "on_topic_refused": round(sum(s < t for s in on) / len(on), 4)})
    return rows


async def run(args) -> dict:
    cols = [load_cranfield(DATA / "cranfield"), load_cisi(DATA / "cisi"), load_faq(FAQ)]
    for c in cols:
        subsample(c, args.queries)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="aibot-rag-bench-"))
    settings = Settings(_env_file=None, data_dir=data_dir, database_url=args.database_url)
    modes = args.modes.split(",")
    out: dict = {"modes": modes, "k_chunks": K_CHUNKS}
    async with await App.open(settings) as app:
        kb = app.services.kb
        min_score = kb.settings.min_score
        out["model"] = kb.embedder.model
        names = {}
        for c in cols:
            names[c.name], secs, chunks = await ingest(kb, c)
            out.setdefault("collections", {})[c.name] = {
                "documents": len(c.docs), "queries": len(c.queries), "chunks": chunks, "ingest_seconds": round(secs, 1)}
        qvec: dict[str, dict[int, list[float]]] = {}
        for c in cols:
            t = time.perf_counter()
            vs = await kb.embedder.embed(list(c.queries.values()))
            qvec[c.name] = dict(zip(c.queries, vs))
            out["collections"][c.name]["query_embed_ms_mean"] = round((time.perf_counter() - t) * 1000 / len(vs), 2)
        if not args.no_references:
            encode = kb.embedder.encode
            for c in cols:
                qv = {q: np.array(v, dtype=np.float32) for q, v in qvec[c.name].items()}
                out["collections"][c.name]["reference"] = await asyncio.to_thread(references, c, encode, qv)
        by_name = {c.name: c for c in cols}
        # abstention pairs: (knowledge base, questions from)
        pairs = [("cranfield", "cisi"), ("cisi", "cranfield"), ("faq", "cranfield"), ("faq", "cisi")]
        for mode in modes:
            res: dict = {}
            best: dict[tuple[str, str], list[float]] = {}
            lat_all: list[float] = []
            for c in cols:
                got, lat = await run_mode(kb, c, c.name, c.queries, qvec[c.name], mode, names[c.name])
                lat_all += lat
                res[c.name] = {**mean_metrics([metrics(r, c.qrels[q]) for q, (r, _) in got.items()]),
                               "search_ms_p50": round(pct(lat, 0.5) * 1000, 2),
                               "search_ms_p95": round(pct(lat, 0.95) * 1000, 2)}
                best[(c.name, c.name)] = [b for _, b in got.values()]
            for kb_name, qfrom in pairs:
                src = by_name[qfrom]
                got, _ = await run_mode(kb, by_name[kb_name], kb_name, src.queries, qvec[qfrom], mode, names[kb_name])
                best[(kb_name, qfrom)] = [b for _, b in got.values()]
            on_main = best[("cranfield", "cranfield")] + best[("cisi", "cisi")]
            off_main = best[("cranfield", "cisi")] + best[("cisi", "cranfield")]
            on_faq, off_faq = best[("faq", "faq")], best[("faq", "cranfield")] + best[("faq", "cisi")]
            grid = sweep(on_main, off_main)
            ok = [r for r in grid if r["off_topic_answerable"] <= 0.05 and r["on_topic_refused"] <= 0.03]
            res["abstention"] = {
                "threshold": min_score,
                "cranfield+cisi": {"off_topic_answerable": round(sum(s >= min_score for s in off_main) / len(off_main), 4),
                                   "on_topic_refused": round(sum(s < min_score for s in on_main) / len(on_main), 4)},
                "faq (held out)": {"off_topic_answerable": round(sum(s >= min_score for s in off_faq) / len(off_faq), 4),
                                   "on_topic_refused": round(sum(s < min_score for s in on_faq) / len(on_faq), 4)},
                "best_score_quantiles": {
                    f"{k[0]} KB, {k[1]} questions": [round(pct(v, q), 3) for q in (0.03, 0.05, 0.5, 0.95, 0.97)]
                    for k, v in best.items()},
                "thresholds_meeting_targets": [ok[0]["threshold"], ok[-1]["threshold"]] if ok else None,
                "sweep": [r for r in grid if 0.2 <= r["threshold"] <= 0.9 and round(r["threshold"] * 100) % 2 == 0],
            }
            res["search_ms_p50_all"] = round(pct(lat_all, 0.5) * 1000, 2)
            res["search_ms_p95_all"] = round(pct(lat_all, 0.95) * 1000, 2)
            out[mode] = res
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=None, help="keep the embedded database here (reruns skip ingestion)")
    ap.add_argument("--database-url", default=None, help="default: the embedded server in --data-dir")
    ap.add_argument("--modes", default="dense,fulltext,rrf,blend,hybrid")
    ap.add_argument("--queries", type=int, default=None, help="about this many queries per collection (every n-th)")
    ap.add_argument("--no-references", action="store_true", help="skip the in-memory reference rankings")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
