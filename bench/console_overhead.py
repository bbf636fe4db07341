"""The bot's own overhead per console message, against the raw model call.

The fake OpenAI server answers instantly on loopback. In the same process and
interleaved, we time (a) the raw `openai` SDK call the bot makes (a streamed completion,
or a plain one for /summarize), and (b) the whole console path for a message: parse, router,
pattern, history and token budgeting, the same SDK call, the streaming renderer, console
output, and the usage-ledger write to PostgreSQL. Overhead = (b) - (a), reported as the
median over rounds of per-round medians.

    .venv/bin/python bench/console_overhead.py [--rounds 5] [--n 200]
"""
from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.console.adapter import ConsoleAdapter, ConsoleConversation  # noqa: E402
from bot.app import App  # noqa: E402
from bot.core.settings import Settings  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI, Script  # noqa: E402

ANSWER = "Sure: " + " ".join(f"word{i}" for i in range(40))


async def bench(rounds: int, n: int, database_url: str | None) -> dict:
    fake = FakeOpenAI(responder=lambda body: Script(text=ANSWER)).start()
    data = tempfile.mkdtemp(prefix="aibot-bench-")
    settings = Settings(
        _env_file=None, openai_base_url=fake.base_url, openai_api_key="bench", data_dir=Path(data),
        database_url=database_url, cache_ttl_seconds=0,
    )
    results: dict[str, list[float]] = {"mention": [], "summarize": []}
    ratios: dict[str, list[float]] = {"mention": [], "summarize": []}
    async with await App.open(settings) as app:
        console = ConsoleAdapter(bot_name="aibot", input=io.BytesIO(), output=io.StringIO(), user="bench")
        client = app.services.llm.client
        messages = [{"role": "system", "content": "x"}, {"role": "user", "content": "hello"}]

        async def raw_stream() -> None:
            resp = await client.chat.completions.create(
                model=settings.chat_model, messages=messages, stream=True, stream_options={"include_usage": True}
            )
            async for _ in resp:
                pass

        async def raw_complete() -> None:
            await client.chat.completions.create(model=settings.chat_model, messages=messages)

        async def bot_line(line: str) -> None:
            console._output = io.StringIO()
            msg = console.parse(line)
            await app.router.dispatch(msg, ConsoleConversation(console))

        cases = {
            "mention": (raw_stream, lambda: bot_line("@aibot what did we decide about the launch?")),
            "summarize": (raw_complete, lambda: bot_line("/summarize The launch moved to Thursday; Carol writes notes.")),
        }
        for _ in range(20):  # warm up connections, caches, code paths
            for raw, ours in cases.values():
                await raw()
                await ours()
        for _ in range(rounds):
            for name, (raw, ours) in cases.items():
                raw_t, bot_t = [], []
                for _ in range(n):
                    t0 = time.perf_counter()
                    await raw()
                    t1 = time.perf_counter()
                    await ours()
                    t2 = time.perf_counter()
                    raw_t.append(t1 - t0)
                    bot_t.append(t2 - t1)
                    console.history.clear()
                results[name].append((statistics.median(bot_t) - statistics.median(raw_t)) * 1000)
                ratios[name].append(statistics.median(bot_t) / statistics.median(raw_t))
    fake.stop()
    return {
        name: {
            "overhead_ms_median": statistics.median(vals),
            "overhead_ms_rounds": [round(v, 2) for v in vals],
            "ratio_to_raw_call": statistics.median(ratios[name]),
        }
        for name, vals in results.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=200, help="messages per round and case")
    parser.add_argument("--database-url", default=None, help="default: the embedded server in a temp dir")
    args = parser.parse_args()
    out = asyncio.run(bench(args.rounds, args.n, args.database_url))
    for name, r in out.items():
        print(
            f"{name:10s} added latency per message: median {r['overhead_ms_median']:.2f} ms "
            f"(per-round medians {r['overhead_ms_rounds']}), {r['ratio_to_raw_call']:.2f}x the raw SDK call"
        )


if __name__ == "__main__":
    main()
