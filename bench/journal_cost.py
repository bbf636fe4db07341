"""What the answer journal costs on the hot path: database statements and transactions
per answered Slack mention, with the journal on and off, for one mention at a time and
for bursts.

The bot is composed as `aibot run` composes it (bot.app.App on the embedded PostgreSQL,
the real Slack adapter over Socket Mode to the fake Slack, the fake model streaming each
answer); statements are counted with SQLAlchemy's engine events and sorted by what they
touch. The journal's periodic work (heartbeat, recovery sweeps) is counted apart: it is
per process, not per answer. "Off" is the same bot with Slack not journaled.

    .venv/bin/python bench/journal_cost.py [--bursts 1,10,50] [--rounds 3]

Prints one line per (journal, burst): answers, statements and transactions per answer
(medians over rounds), split by table. Counts, not times: they do not depend on the load
of the machine.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402
from sqlalchemy import event  # noqa: E402

from adapters.slack.adapter import SlackAdapter  # noqa: E402
from adapters.slack.settings import SlackSettings  # noqa: E402
from bot.app import App  # noqa: E402
from bot.core import pgembed  # noqa: E402
from bot.core.settings import Settings  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI, Script  # noqa: E402
from tests.fakes.slack_server import APP_TOKEN, BOT_TOKEN, FakeSlack  # noqa: E402
from tests.slack_support import load  # noqa: E402


def kind(sql: str) -> str:
    s = sql.lower()
    if "answer_journal" in s:
        if "lease_until = now()" in s and "update answer_journal set" in s:
            return "periodic"  # heartbeat
        if "for update skip locked" in s or "min(lease_until)" in s or "select distinct owner" in s:
            return "periodic"  # recovery sweep
        return "journal" if "processed_events" not in s else "dedupe+journal"
    if "processed_events" in s:
        return "dedupe"
    if "insert into usage" in s:
        return "ledger"
    return "other"


async def burst(app, adapter, fake, llm, n: int, seq: list[int]) -> None:
    for _ in range(n):
        llm.enqueue(Script(text="A short answer of a few words.", tokens_per_second=200))
    sent = []
    for _ in range(n):
        seq[0] += 1
        i = seq[0]
        sent.append(fake.send_event(load("app_mention", event_id=f"EvBENCH{i:06d}", ts=f"1700000000.{i:06d}",
                                         channel=f"C{i % 7}BENCH")))
    await asyncio.gather(*sent)
    await fake.wait_for(lambda: adapter.handled >= seq[0], timeout=120)
    await adapter.idle()
    await app.router.drain()
    await app.services.journal.flush(timeout=30)
    await app.services.ledger.flush(timeout=30)


async def main(bursts: list[int], rounds: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="journal-cost-"))
    server, url = pgembed.start(tmp / "pg", database="bench")
    fake = await FakeSlack(per_minute={}).start()
    try:
        with FakeOpenAI() as llm:
            settings = Settings(_env_file=None, database_url=url, openai_base_url=llm.base_url,
                                openai_api_key="sk-bench-not-real", data_dir=tmp / "data", cache_ttl_seconds=0)
            async with await App.open(settings) as app:
                counts: Counter = Counter()

                def count(conn, cursor, statement, *args):
                    counts[kind(statement)] += 1

                def commit(conn):
                    counts["transactions"] += 1

                sync = app.services.db.engine.sync_engine
                event.listen(sync, "before_cursor_execute", count)
                event.listen(sync, "commit", commit)
                adapter = SlackAdapter(settings=SlackSettings.load(
                    env_file=None, bot_token=SecretStr(BOT_TOKEN), app_token=SecretStr(APP_TOKEN),
                    api_url=fake.base_url, update_interval=0.05))
                await app.attach(adapter)
                await fake.wait_connected()
                seq = [0]
                await burst(app, adapter, fake, llm, 2, seq)  # warm-up: first-use lookups
                print(f"{'journal':8} {'burst':>5} {'answers':>7} {'stmts/answer':>12} {'tx/answer':>9}  by table")
                for journaled in (False, True):
                    if journaled:
                        app.services.journal.platforms.add("slack")
                    else:
                        app.services.journal.platforms.discard("slack")
                    for n in bursts:
                        per, tx, split = [], [], []
                        for _ in range(rounds):
                            counts.clear()
                            await burst(app, adapter, fake, llm, n, seq)
                            answered = n
                            per_answer = sum(v for k, v in counts.items() if k not in ("periodic", "transactions"))
                            per.append(per_answer / answered)
                            tx.append(counts["transactions"] / answered)
                            split.append(dict(counts))
                        detail = ", ".join(f"{k} {statistics.median(s.get(k, 0) for s in split) / n:.2f}"
                                           for k in ("dedupe", "dedupe+journal", "journal", "ledger", "other"))
                        print(f"{'on' if journaled else 'off':8} {n:>5} {n:>7} {statistics.median(per):>12.2f} "
                              f"{statistics.median(tx):>9.2f}  {detail}")
                await adapter.stop()
    finally:
        await fake.stop()
        pgembed.stop(server)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bursts", default="1,10,50")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main([int(b) for b in args.bursts.split(",")], args.rounds))
