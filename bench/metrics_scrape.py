"""What one `/metrics` scrape costs as the usage ledger grows: the hand-written exposition
it replaced (a full per-pattern aggregate of the `usage` table, the `by pattern` usage report, on every
scrape) against prometheus-client's (this process's counters, plus the pool gauge).

For each ledger size the table is filled with synthetic rows (generate_series), then in
the same process and interleaved, `--n` scrapes of each are timed; reported as medians
over `--rounds` of per-round medians, and their ratio.

    .venv/bin/python bench/metrics_scrape.py [--rounds 5] [--n 20] [--sizes 0,100000,1000000]
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

from sqlalchemy import text  # noqa: E402

from bot.app import App  # noqa: E402
from bot.core.http import HttpServer  # noqa: E402
from bot.core.metrics import METRICS  # noqa: E402
from bot.core.reports import usage_report  # noqa: E402
from bot.core.settings import Settings  # noqa: E402

FILL = text(
    "INSERT INTO usage (created_at, pattern, model, prompt_tokens, completion_tokens, latency_ms, ttft_ms, cost_usd, "
    "cache_hit, outcome, streamed, platform, workspace, channel, user_id) "
    "SELECT now() - (i || ' seconds')::interval, (ARRAY['streaming','rag','api_wrapper','agent','batch'])[1 + i % 5], "
    "'gpt-4o-mini', 100 + i % 50, 20 + i % 30, 200 + i % 900, 80 + i % 100, 0.0001, i % 7 = 0, "
    "CASE WHEN i % 50 = 0 THEN 'timeout' ELSE 'ok' END, true, 'slack', 'T' || (i % 20), 'C' || (i % 200), "
    "'U' || (i % 1000) FROM generate_series(1, :n) AS i")


async def old_scrape(app) -> None:
    """The replaced handler's work: the per-pattern aggregate of the whole ledger."""
    await usage_report(app.services.db, ledger=app.services.ledger)


async def new_scrape(server: HttpServer) -> None:
    await METRICS.exposition()


async def bench(rounds: int, n: int, sizes: list[int], database_url: str | None) -> list[dict]:
    settings = Settings(_env_file=None, data_dir=Path(tempfile.mkdtemp(prefix="aibot-bench-")), database_url=database_url)
    out = []
    async with await App.open(settings) as app:
        server = HttpServer(app.services, host="127.0.0.1", port=0)
        METRICS.on_scrape(server.refresh_pool)
        filled = 0
        for size in sizes:
            async with app.services.db.session.begin() as s:
                if size > filled:
                    await s.execute(FILL, {"n": size - filled})
                filled = size
            async with app.services.db.engine.connect() as conn:
                await conn.execute(text("ANALYZE usage"))
            for _ in range(3):
                await old_scrape(app)
                await new_scrape(server)
            olds, news = [], []
            for _ in range(rounds):
                o, w = [], []
                for _ in range(n):
                    t0 = time.perf_counter()
                    await old_scrape(app)
                    t1 = time.perf_counter()
                    await new_scrape(server)
                    t2 = time.perf_counter()
                    o.append(t1 - t0)
                    w.append(t2 - t1)
                olds.append(statistics.median(o) * 1000)
                news.append(statistics.median(w) * 1000)
            out.append({"rows": size, "old_ms": statistics.median(olds), "new_ms": statistics.median(news),
                        "ratio": statistics.median(olds) / statistics.median(news)})
        METRICS.forget(server.refresh_pool)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=20, help="scrapes of each kind per round")
    parser.add_argument("--sizes", default="0,100000,1000000", help="ledger sizes, in rows, ascending")
    parser.add_argument("--database-url", default=None, help="default: the embedded server in a temp dir")
    args = parser.parse_args()
    rows = asyncio.run(bench(args.rounds, args.n, [int(s) for s in args.sizes.split(",")], args.database_url))
    print(f"{'ledger rows':>12}  {'old scrape ms':>14}  {'new scrape ms':>14}  {'old/new':>8}")
    for r in rows:
        print(f"{r['rows']:>12,}  {r['old_ms']:>14.2f}  {r['new_ms']:>14.2f}  {r['ratio']:>8.0f}x")


if __name__ == "__main__":
    main()
