"""The agent loop's own overhead per step, excluding model time.

The fake OpenAI server answers instantly on loopback: three rounds of a `calculate` tool
call, then a text answer (four model calls per run). In the same process and
interleaved, we time (a) the four raw `openai` SDK streamed calls with the same message
lists and tools, and (b) one full agent run: schema'd tools, argument validation, tool
dispatch (the calculator runs in a worker thread), status lines, message building, the
same four SDK calls, and one usage-ledger row per call in PostgreSQL. Overhead per step
= ((b) - (a)) / 4 model calls, reported as the median over rounds of per-round medians.

    .venv/bin/python bench/agent_overhead.py [--rounds 5] [--n 100] [--no-ledger]

`--no-ledger` leaves out the usage-ledger writes (which every pattern makes), to show the
loop's own share.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app import App  # noqa: E402
from bot.core.settings import Settings  # noqa: E402
from bot.core.messages import Incoming  # noqa: E402
from patterns.agent import AgentLimits, AgentSettings, Run, run_agent  # noqa: E402
from patterns.agent.toolbox import ALL  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI, Script  # noqa: E402

ROUNDS_OF_TOOLS = 3
CALLS = ROUNDS_OF_TOOLS + 1


def responder(body: dict) -> Script:
    done = sum(1 for m in body["messages"] if m.get("role") == "tool")
    if done < ROUNDS_OF_TOOLS:
        return Script(tool_calls=[{"name": "calculate", "arguments": {"expression": f"{done} + 40 * 2"}}])
    return Script(text="The answer is 82, computed three times to be sure.")


async def bench(rounds: int, n: int, database_url: str | None, ledger: bool = True) -> dict:
    fake = FakeOpenAI(responder=responder).start()
    data = tempfile.mkdtemp(prefix="aibot-bench-")
    settings = Settings(
        _env_file=None, openai_base_url=fake.base_url, openai_api_key="bench", data_dir=Path(data),
        database_url=database_url, cache_ttl_seconds=0,
    )
    per_step: list[float] = []
    ratios: list[float] = []
    async with await App.open(settings) as app:
        client = app.services.llm.client
        if not ledger:
            app.services.llm.ledger = None
        specs = [t.spec() for t in ALL]
        msg = Incoming(platform="bench", tenant="T", channel="C", user="U", text="compute")
        limits = AgentLimits.from_settings(settings.section(AgentSettings), answer_tokens=settings.answer_max_tokens)

        # the same conversations the agent sends, built once from a recorded run
        fake.reset()
        run = Run(services=app.services, conv=None, msg=msg, sql=None)
        async for _ in run_agent(run, "compute 40 * 2 three times", limits=limits):
            pass
        conversations = [r["messages"] for r in fake.chat_requests]
        assert len(conversations) == CALLS

        async def raw() -> None:
            for messages in conversations:
                resp = await client.chat.completions.create(
                    model=settings.chat_model, messages=messages, tools=specs, max_tokens=settings.answer_max_tokens,
                    stream=True, stream_options={"include_usage": True},
                )
                async for _ in resp:
                    pass

        async def agent() -> None:
            run = Run(services=app.services, conv=None, msg=msg, sql=None)
            async for _ in run_agent(run, "compute 40 * 2 three times", limits=limits):
                pass

        for _ in range(10):  # warm up connections and code paths
            await raw()
            await agent()
        for _ in range(rounds):
            raw_t, agent_t = [], []
            for _ in range(n):
                t0 = time.perf_counter()
                await raw()
                t1 = time.perf_counter()
                await agent()
                t2 = time.perf_counter()
                raw_t.append(t1 - t0)
                agent_t.append(t2 - t1)
            fake.reset()
            per_step.append((statistics.median(agent_t) - statistics.median(raw_t)) / CALLS * 1000)
            ratios.append(statistics.median(agent_t) / statistics.median(raw_t))
    fake.stop()
    return {
        "overhead_ms_per_step_median": statistics.median(per_step),
        "overhead_ms_rounds": [round(v, 2) for v in per_step],
        "ratio_to_raw_calls": statistics.median(ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=100, help="agent runs per round")
    parser.add_argument("--no-ledger", action="store_true", help="leave out the usage-ledger writes")
    parser.add_argument("--database-url", default=None, help="default: the embedded server in a temp dir")
    args = parser.parse_args()
    r = asyncio.run(bench(args.rounds, args.n, args.database_url, ledger=not args.no_ledger))
    print(
        f"agent loop overhead per step{' (no ledger)' if args.no_ledger else ''}: median {r['overhead_ms_per_step_median']:.2f} ms "
        f"(per-round medians {r['overhead_ms_rounds']}), a run takes {r['ratio_to_raw_calls']:.2f}x "
        f"its {CALLS} raw SDK calls"
    )


if __name__ == "__main__":
    main()
