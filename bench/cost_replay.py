"""Replay a team's day against the fake model with a price table, three times in one
process: without caches and routing (the baseline: no exact or semantic cache, every
call on the chat model, chat with its history), with routing only (summaries and
digests on the fast model, standalone questions asked without the history, no answer
caches) and with both (plus the exact and semantic answer caches).

The day (`--scale 1`), from the labelled pairs of bench/data/semantic_pairs.jsonl:
  80 unique questions; 60 exact repeats of them by other people in other channels;
  40 paraphrases of them; 30 near misses (one answer-changing word differs: must not
  hit); 20 follow-ups ("and what about the EU?": must not hit); 30 `/summarize` of one
  long text by different people; 5 digests (`/summarize 24h`); 10 agent tasks.
Prices: chat model gpt-4o, fast model gpt-4o-mini (list prices, cached input included).
A false hit is a chat question answered from the cache with an answer written for a
question of another meaning (the fake's answers name their question; meanings come from
the labelled pairs), or a follow-up answered from the cache at all.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/cost_replay.py [--scale 1] [--json]
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import shutil
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select  # noqa: E402

from bot.app import App  # noqa: E402
from bot.core.costs import CostSettings  # noqa: E402
from bot.core.models import Usage  # noqa: E402
from bot.core.reports import format_report, usage_report  # noqa: E402
from bot.core.settings import Settings  # noqa: E402
from patterns.rag import Rag  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI, Script  # noqa: E402
from tests.harness import Harness  # noqa: E402

PAIRS = Path(__file__).parent / "data" / "semantic_pairs.jsonl"
CHAT_MODEL, FAST_MODEL = "gpt-4o", "gpt-4o-mini"
FOLLOW_UPS = ["and what about the EU?", "can you explain that again?", "what about the other one?",
              "and is it the same for contractors?", "why is that?"]
LONG_TEXT = "\n\n".join(
    f"Section {i}. The quarterly planning notes cover hiring, budget, the launch schedule and the risks "
    f"the team discussed in meeting {i}, with owners and dates for each action item." for i in range(60)
)


ASKED: dict[str, str] = {}  # marker -> the question the model answered


def responder(body: dict) -> Script:
    """A ~90-token answer that names the question it answers (`[q:…]`), so a reused answer
    can be traced to the question it was written for."""
    last = str(next((m.get("content") or "" for m in reversed(body["messages"]) if m.get("role") == "user"), ""))
    marker = hashlib.sha256(last.encode()).hexdigest()[:10]
    ASKED[marker] = last
    return Script(text=f"[q:{marker}] Answer about {' '.join(last.split()[:10])}. "
                       + "Here are the details you need, step by step. " * 8)


def meanings() -> dict[str, str]:
    """Question -> what it asks (intent and slot values, from bench/semantic_pairs.py)."""
    out: dict[str, str] = {}
    for r in (json.loads(x) for x in PAIRS.read_text().splitlines() if x.strip()):
        out[r["a"]], out[r["b"]] = r["ma"], r["mb"]
    return out


def false_hit(asked: str, reply: str, meaning: dict[str, str]) -> bool:
    """A reused answer written for a question that means something else."""
    m = re.search(r"\[q:([0-9a-f]{10})\]", reply)
    source = ASKED.get(m.group(1), "") if m else ""
    source = source.split(": ", 1)[-1] if source not in meaning else source  # chat with history: "name: q"
    return meaning.get(source, "?source") != meaning.get(asked, "?asked")


def day(scale: int, seed: int = 15) -> list[tuple[str, str, dict]]:
    """(kind, text, overrides) in the order they happen."""
    rng = random.Random(seed)
    rows = [json.loads(x) for x in PAIRS.read_text().splitlines() if x.strip()]
    pos = [r for r in rows if r["label"] == 1]
    neg = [r for r in rows if r["label"] == 0]
    rng.shuffle(pos)
    rng.shuffle(neg)
    unique = pos[: 80 * scale]
    near = neg[: 30 * scale]
    people = [f"U{i}" for i in range(12)]
    channels = [f"C{i}" for i in range(6)]

    def who() -> dict:
        return dict(user=rng.choice(people), channel=rng.choice(channels))

    events: list[tuple[str, str, dict]] = [("unique", "@aibot " + r["a"], who()) for r in unique]
    events += [("unique", "@aibot " + r["a"], who()) for r in near]  # the near misses' originals
    later = [("repeat", "@aibot " + rng.choice(unique)["a"], who()) for _ in range(60 * scale)]
    later += [("paraphrase", "@aibot " + r["b"], who()) for r in unique[: 40 * scale]]
    later += [("near_miss", "@aibot " + r["b"], who()) for r in near]
    later += [("follow_up", "@aibot " + rng.choice(FOLLOW_UPS), who()) for _ in range(20 * scale)]
    later += [("summary", "/summarize " + LONG_TEXT, who()) for _ in range(30 * scale)]
    later += [("digest", "/summarize 24h", who()) for _ in range(5 * scale)]
    later += [("agent", "/agent what were total sales last month and the growth vs the month before?", who())
              for _ in range(10 * scale)]
    rng.shuffle(later)
    return events + later


async def replay(events, *, cached: bool, fake: FakeOpenAI, routed: bool | None = None) -> dict:
    """`routed`: the fast model for summaries and standalone questions without history
    (default: as `cached`); `cached`: the exact and semantic answer caches."""
    routed = cached if routed is None else routed
    data = Path(tempfile.mkdtemp(prefix="aibot-cost-"))
    costs = CostSettings(_env_file=None, semantic_cache=cached)
    settings = Settings(
        _env_file=None, openai_base_url=fake.base_url, openai_api_key="bench", data_dir=data,
        chat_model=CHAT_MODEL, fast_model=FAST_MODEL if routed else CHAT_MODEL,
        cache_ttl_seconds=7 * 86400 if cached else 0,
    ).with_sections(costs)
    false_hits = must_not_hit = answered = 0
    hits_by_kind: dict[str, list[int]] = {}
    false_examples: list[str] = []
    meaning = meanings()
    async with await App.open(settings) as app:
        if not routed:  # the bot before this work: no answer caches, chat always with its history
            app.services.answer_cache = None
            app.feature(Rag).answers.answers = None
        bot = Harness(app)
        for kind, text, who in events:
            replies = await bot.send(text, **who)
            hit = any("cached answer" in r for r in replies)
            seen = hits_by_kind.setdefault(kind, [0, 0])
            seen[0] += 1
            seen[1] += hit
            if kind in ("unique", "repeat", "paraphrase", "near_miss", "follow_up"):
                answered += 1
                wrong = hit and (kind == "follow_up" or false_hit(text.removeprefix("@aibot "), replies[0], meaning))
                false_hits += wrong
                if wrong:
                    false_examples.append(f"{text[:90]} <- {replies[0][:80]}")
            if kind in ("near_miss", "follow_up"):
                must_not_hit += 1
            bot.history = bot.history[-50:]
        async with app.services.db.session() as s:
            rows = (await s.execute(select(Usage.pattern, func.sum(Usage.cost_usd), func.count(),
                                           func.count().filter(Usage.cache_hit), func.sum(Usage.cached_tokens))
                                    .group_by(Usage.pattern))).all()
        report = format_report(await usage_report(app.services.db, by="pattern"), by="pattern")
    shutil.rmtree(data, ignore_errors=True)
    by_pattern = {r[0]: {"cost_usd": float(r[1]), "calls": r[2], "cache_hits": r[3], "provider_cached_tokens": int(r[4])}
                  for r in rows}
    total = sum(Decimal(str(v["cost_usd"])) for v in by_pattern.values())
    return {"total_usd": float(total), "by_pattern": by_pattern, "false_hits": false_hits,
            "must_not_hit": must_not_hit, "questions": answered, "report": report, "hits_by_kind": {k: f"{v[1]}/{v[0]}" for k, v in hits_by_kind.items()},
            "false_hit_examples": false_examples}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    events = day(args.scale)
    fake = FakeOpenAI(responder=responder).start()
    try:
        off = await replay(events, cached=False, fake=fake)
        fake.reset()
        routing = await replay(events, cached=False, routed=True, fake=fake)
        fake.reset()
        on = await replay(events, cached=True, fake=fake)
    finally:
        fake.stop()

    def chat(r: dict) -> float:
        return sum(v["cost_usd"] for k, v in r["by_pattern"].items() if k in ("streaming", "rag"))

    result = {
        "messages": len(events), "off": off, "routing_only": routing, "on": on,
        "saving_routing_only": round(1 - routing["total_usd"] / off["total_usd"], 4),
        "saving_chat_routing_only": round(1 - chat(routing) / chat(off), 4),
        "saving_overall": round(1 - on["total_usd"] / off["total_usd"], 4),
        "saving_chat": round(1 - chat(on) / chat(off), 4),
        "false_hits": f"{on['false_hits']}/{on['questions']}",
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{len(events)} messages; cost without cache+routing ${off['total_usd']:.4f}, with ${on['total_usd']:.4f}")
    print(f"routing only (no answer caches): ${routing['total_usd']:.4f}, saving {result['saving_routing_only']:.1%}, "
          f"chat {result['saving_chat_routing_only']:.1%}")
    print(f"saving overall {result['saving_overall']:.1%}, chat only {result['saving_chat']:.1%}, "
          f"false hits {result['false_hits']} chat questions (a reused answer written for another meaning)")
    print("answers from the cache by kind:", on["hits_by_kind"])
    print("`aibot stats` after the replay with caches on:\n" + on["report"])
    for example in on["false_hit_examples"]:
        print("  false hit:", example)
    for name, r in (("off", off), ("rt", routing), ("on", on)):
        for p, v in sorted(r["by_pattern"].items()):
            print(f"  {name:3s} {p:12s} calls {v['calls']:4d}  hits {v['cache_hits']:4d}  "
                  f"prov-cached {v['provider_cached_tokens']:7d}  ${v['cost_usd']:.4f}")


if __name__ == "__main__":
    asyncio.run(main())
