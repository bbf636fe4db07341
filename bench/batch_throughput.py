"""Bulk-job throughput (items/min) against the ideal `concurrency / latency`.

The fake OpenAI server (its own process) answers every request after a fixed latency. Each round submits a
fresh job of N items and times the worker from start to the job being done (claiming
with FOR UPDATE SKIP LOCKED, the model call through the LLM client, the usage-ledger row
and the item's result, all in PostgreSQL). In the same process, a baseline round runs the
same N raw SDK calls with the same concurrency limit and no bot around them (what the
model endpoint allows). Reported: medians over rounds, as items/min and as a fraction of
the ideal concurrency / latency; target >= 90%.

    .venv/bin/python bench/batch_throughput.py [--rounds 5] [--n 200] [--concurrency 8] [--latency 0.2]
"""
from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app import App  # noqa: E402
from bot.core.settings import Settings  # noqa: E402
from patterns.batch.jobs import Item, JobStore  # noqa: E402
from patterns.batch import Batch  # noqa: E402
from patterns.batch.settings import BatchSettings  # noqa: E402


async def bench(rounds: int, n: int, concurrency: int, latency: float, database_url: str | None) -> dict:
    # the model endpoint runs in its own process, as a remote provider would (no shared GIL)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    fake = subprocess.Popen([sys.executable, "-m", "tests.fakes.openai_server", "--port", str(port), "--ttft", str(latency)],
                            cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE)
    fake.stdout.readline()  # "fake OpenAI server on ..." once it listens
    settings = Settings(
        _env_file=None, openai_base_url=f"http://127.0.0.1:{port}/v1", openai_api_key="bench", data_dir=Path(tempfile.mkdtemp(prefix="aibot-bench-")),
        database_url=database_url, cache_ttl_seconds=0,
    ).with_sections(BatchSettings.load(env_file=None, concurrency=concurrency))
    ideal = concurrency / latency * 60
    ours, raw = [], []
    async with await App.open(settings) as app:
        client, store = app.services.llm.client, JobStore(app.services.db)

        async def raw_round() -> float:
            gate = asyncio.Semaphore(concurrency)

            async def one(i: int) -> None:
                async with gate:
                    await client.chat.completions.create(
                        model=settings.fast_model, messages=[{"role": "user", "content": f"report {i}"}])

            t0 = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(n)))
            return n / (time.perf_counter() - t0) * 60

        async def job_round(r: int) -> float:
            items = [Item(f"r{r}-{i}", f"Report {r}.{i}: shipped feature {i}, fixed {i % 7} bugs.", "Summarize in one line.")
                     for i in range(n)]
            job = await store.create(items, model=settings.fast_model)
            t0 = time.perf_counter()
            await app.feature(Batch).worker.run_until_idle(job)
            elapsed = time.perf_counter() - t0
            status = await store.status(job, results=False)
            assert status["status"] == "done" and status["counts"]["done"] == n, status
            return n / elapsed * 60

        await job_round(-1)  # warm up connections and code paths
        await raw_round()
        for r in range(rounds):
            raw.append(await raw_round())
            ours.append(await job_round(r))
    fake.terminate()
    fake.wait(10)
    return {
        "ideal": ideal, "raw": statistics.median(raw), "job": statistics.median(ours),
        "job_rounds": ours, "raw_rounds": raw,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--n", type=int, default=200, help="items per job")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--latency", type=float, default=0.2, help="seconds the fake model takes per request")
    p.add_argument("--database-url", default=None, help="default: the embedded server")
    a = p.parse_args()
    r = asyncio.run(bench(a.rounds, a.n, a.concurrency, a.latency, a.database_url))
    print(f"concurrency {a.concurrency}, latency {a.latency * 1000:.0f} ms, {a.n} items/job, {a.rounds} rounds (medians)")
    print(f"ideal (concurrency / latency): {r['ideal']:8.0f} items/min")
    print(f"raw SDK calls, same limit:     {r['raw']:8.0f} items/min  ({r['raw'] / r['ideal']:.1%} of ideal)")
    print(f"bulk job (worker + Postgres):  {r['job']:8.0f} items/min  ({r['job'] / r['ideal']:.1%} of ideal, "
          f"{r['job'] / r['raw']:.1%} of raw)")
    print("rounds:", ", ".join(f"{x:.0f}" for x in r["job_rounds"]))


if __name__ == "__main__":
    main()
