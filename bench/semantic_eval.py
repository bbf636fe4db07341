"""The semantic cache's false-hit rate, measured on the labelled pairs
(bench/data/semantic_pairs.jsonl, made by bench/semantic_pairs.py) with the bot's own
local embedding model (all-MiniLM-L6-v2, offline).

A pair "hits" when the cache would answer one question with the other's answer: cosine
similarity >= threshold (and, for the rule the bot uses, equal key terms). Hit rate is
over the paraphrases, false-hit rate over the hard negatives. The threshold is chosen
on one half of the intents' pairs (even rows) as the lowest with <= 1% false hits, and
reported on the other half (odd rows), so the figure is not tuned to itself. With ~265
negatives a half, 1% is under three pairs, so the choice is the lowest threshold with no
false hit at all on the choosing half (a margin for the noise), and the target (<= 1%)
is checked on the other half.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/semantic_eval.py [--json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from bot.core.embeddings import LocalEmbedder
from bot.core.keyterms import same_key_terms

DATA = Path(__file__).parent / "data" / "semantic_pairs.jsonl"
TARGET = 0.01
GRID = [round(0.70 + 0.01 * i, 2) for i in range(30)]


def rates(rows: list[dict], theta: float, *, guard: bool) -> tuple[float, float]:
    pos = [r for r in rows if r["label"] == 1]
    neg = [r for r in rows if r["label"] == 0]

    def hit(r: dict) -> bool:
        return r["sim"] >= theta and (not guard or r["same_terms"])

    return sum(map(hit, pos)) / len(pos), sum(map(hit, neg)) / len(neg)


def choose(rows: list[dict], *, guard: bool) -> float:
    """The lowest threshold on the grid with no false hit on `rows`."""
    for theta in GRID:
        if rates(rows, theta, guard=guard)[1] == 0:
            return theta
    return 1.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    emb = LocalEmbedder()
    texts = sorted({t for r in rows for t in (r["a"], r["b"])})
    vecs = dict(zip(texts, emb.encode(texts)))
    for r in rows:
        r["sim"] = sum(x * y for x, y in zip(vecs[r["a"]], vecs[r["b"]]))
        r["same_terms"] = same_key_terms(r["a"], r["b"])
    dev, test = rows[0::2], rows[1::2]
    result = {"pairs": len(rows), "paraphrases": sum(r["label"] for r in rows),
              "hard_negatives": sum(1 - r["label"] for r in rows)}
    for name, guard in (("embedding_only", False), ("embedding_and_key_terms", True)):
        theta = choose(dev, guard=guard)
        hit, false_hit = rates(test, theta, guard=guard)
        all_hit, all_false = rates(rows, theta, guard=guard)
        at_090 = rates(rows, 0.90, guard=guard)
        result[name] = {"threshold": theta, "meets_target": false_hit <= TARGET, "test_hit_rate": round(hit, 4), "test_false_hit_rate": round(false_hit, 4),
                        "all_hit_rate": round(all_hit, 4), "all_false_hit_rate": round(all_false, 4),
                        "at_0.90": {"hit_rate": round(at_090[0], 4), "false_hit_rate": round(at_090[1], 4)}}
    theta = result["embedding_and_key_terms"]["threshold"]
    by_kind: dict[str, list[int]] = {}
    for r in rows:
        if r["label"] == 0:
            by_kind.setdefault(r["kind"], [0, 0])
            by_kind[r["kind"]][0] += 1
            by_kind[r["kind"]][1] += int(r["sim"] >= theta and r["same_terms"])
    result["false_hits_by_kind_at_chosen"] = {k: f"{v[1]}/{v[0]}" for k, v in sorted(by_kind.items())}
    result["curve"] = {f"{t:.2f}": [round(x, 4) for x in rates(rows, t, guard=True)] for t in GRID}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['pairs']} pairs: {result['paraphrases']} paraphrases, {result['hard_negatives']} hard negatives")
    for name in ("embedding_only", "embedding_and_key_terms"):
        r = result[name]
        print(f"{name:26s} θ={r['threshold']:.2f}  held-out hit {r['test_hit_rate']:.1%}  false hit "
              f"{r['test_false_hit_rate']:.1%}  (all pairs: {r['all_hit_rate']:.1%} / {r['all_false_hit_rate']:.1%}; "
              f"at θ=0.90: {r['at_0.90']['hit_rate']:.1%} / {r['at_0.90']['false_hit_rate']:.1%})")
    print("false hits by kind at the chosen θ (bot's rule):", result["false_hits_by_kind_at_chosen"])


if __name__ == "__main__":
    main()
