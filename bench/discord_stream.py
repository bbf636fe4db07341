"""Streamed answers on Discord: edits per answer and the delay to the first visible text.

The real discord.py client runs against the fake Discord (REST + gateway, with a
per-channel edit bucket of 5 per 5 s and real X-RateLimit-* headers) and the fake model
streams each answer at a fixed rate. Per round we measure, for answers to mentions:

- edits per answer (the progressive edits the renderer sent, the final one included),
  against the naive baseline of one edit per token;
- the time from the model's first token (the fake model writes it `ttft` after the request
  arrives) to the first visible Discord message (the fake's receipt of the bot's post),
  against a raw `channel.send` through the same discord.py client, in the same process;
- the most edits the fake accepted in any 5 s window of the channel, and its 429 count.

Scenarios: one answer alone in a channel, and two answers streaming in one channel at the
same time (they share the channel's edit budget). Medians over rounds.

    .venv/bin/python bench/discord_stream.py [--rounds 5] [--tokens 150] [--tps 40]
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app import App  # noqa: E402
from bot.core.settings import Settings  # noqa: E402
from tests.discord_env import connect, settle  # noqa: E402
from tests.fakes.discord_server import EDIT_WINDOW, FakeDiscord  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI, Script  # noqa: E402

TTFT = 0.3
BOT = f"<@{FakeDiscord.BOT_ID}>"


def peak_edits(fake: FakeDiscord, channel: str, since: float) -> int:
    times = [c.at for c in fake.requests("PATCH", rf"^/channels/{channel}/messages/") if c.status == 200 and c.at >= since]
    return max((sum(1 for t in times if s <= t < s + EDIT_WINDOW) for s in times), default=0)


async def one_round(app, fake: FakeDiscord, llm: FakeOpenAI, *, concurrent: int, answer: str, tps: float) -> dict:
    clock = time.time() - time.monotonic()  # the fake model stamps requests with wall time
    start_calls, start_reqs, start = len(fake.calls), len(llm.requests), time.monotonic()
    llm.enqueue(*[Script(text=answer, ttft=TTFT, tokens_per_second=tps) for _ in range(concurrent)])
    if concurrent == 1:
        asks = [await fake.send_message(f"{BOT} tell me about the roadmap")]
    else:  # follow-ups to different answers are separate conversations, streamed in parallel
        earlier = [fake._bot_message(fake.CHANNEL_ID, {"content": f"earlier {n}"}) for n in range(concurrent)]
        asks = [await fake.send_message("go on", reply_to=e["id"]) for e in earlier]
    await settle(app, fake, quiet=0.3, timeout=120)
    calls = fake.calls[start_calls:]
    ask_ids = {a["id"] for a in asks}
    posts = [c for c in calls if c.method == "POST" and c.path == f"/channels/{fake.CHANNEL_ID}/messages"
             and str((c.body.get("message_reference") or {}).get("message_id")) in ask_ids]
    replies = [m for m in fake.bot_messages(fake.CHANNEL_ID)
               if str((m.get("message_reference") or {}).get("message_id")) in ask_ids]
    assert len(replies) == concurrent and all(m["content"] == answer for m in replies), "an answer was incomplete"
    edits = [len(fake.requests("PATCH", rf"/messages/{m['id']}$")) for m in replies]
    first_tokens = sorted(r.at - clock + TTFT for r in llm.requests[start_reqs:] if r.path.endswith("/chat/completions"))
    delays = [p.at - t for p, t in zip(sorted(posts, key=lambda c: c.at), first_tokens)]
    return {"edits": statistics.median(edits), "delay": statistics.median(delays),
            "peak": peak_edits(fake, fake.CHANNEL_ID, start), "overruns": fake.overruns}


async def raw_post(adapter, fake: FakeDiscord) -> float:
    channel = adapter.client.get_channel(int(fake.OTHER_CHANNEL_ID))
    t = time.monotonic()
    await channel.send("baseline")
    return time.monotonic() - t


async def bench(rounds: int, tokens: int, tps: float, database_url: str | None) -> list[dict]:
    llm = FakeOpenAI().start()
    answer = " ".join(f"word{i}" for i in range(tokens))
    settings = Settings(_env_file=None, openai_base_url=llm.base_url, openai_api_key="bench",
                        data_dir=Path(tempfile.mkdtemp(prefix="aibot-bench-")), database_url=database_url,
                        cache_ttl_seconds=0)
    out = []
    try:
        async with FakeDiscord() as fake, await App.open(settings) as app:
            adapter = await connect(app, fake)
            try:
                for concurrent in (1, 2):
                    runs, raws = [], []
                    for _ in range(rounds):
                        raws.append(await raw_post(adapter, fake))
                        runs.append(await one_round(app, fake, llm, concurrent=concurrent, answer=answer, tps=tps))
                        await asyncio.sleep(EDIT_WINDOW)  # a fresh edit window for the next round
                    med = {k: statistics.median(r[k] for r in runs) for k in ("edits", "delay", "peak")}
                    out.append({"concurrent": concurrent, **med, "raw_post": statistics.median(raws),
                                "overruns": runs[-1]["overruns"], "tokens": tokens})
            finally:
                await adapter.stop()
    finally:
        llm.stop()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--tokens", type=int, default=150, help="tokens per answer")
    p.add_argument("--tps", type=float, default=40, help="model tokens per second")
    p.add_argument("--database-url", default=None, help="default: the embedded PostgreSQL")
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    rows = asyncio.run(bench(args.rounds, args.tokens, args.tps, args.database_url))
    print(f"answer: {args.tokens} tokens at {args.tps:g} tokens/s, first token after {TTFT} s; medians of {args.rounds} rounds")
    print("| answers streaming in the channel | edits per answer (vs 1 per token) | first token → first visible message "
          "(vs a raw post) | most edits in any 5 s | 429s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['concurrent']} | {r['edits']:.0f} ({r['edits'] / r['tokens']:.2f}×) | "
              f"{r['delay'] * 1000:.0f} ms ({r['delay'] / r['raw_post']:.1f}× a {r['raw_post'] * 1000:.1f} ms post) | "
              f"{r['peak']:.0f} | {r['overruns']} |")


if __name__ == "__main__":
    main()
