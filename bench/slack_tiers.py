"""Slack's per-workspace tiers under `aibot run --workers N`: how many write calls of each
rate-limited method the workers together made to one workspace in the busiest 60 s,
against Slack's documented tier, and how many the fake Slack answered 429.

It runs `bench/load_slack.py` (the same bot, fake Slack and fake model; all mentions to
one workspace) for one step long enough for the tiers to matter, then reads the calls
the fake Slack recorded.

    .venv/bin/python bench/slack_tiers.py --workers 2 --rate 4 --seconds 90

Loopback only; bounded in count and time.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import load_slack  # noqa: E402
from tests.fakes.slack_server import TIERS  # noqa: E402

fakes: list = []


class RecordedSlack(load_slack.FakeSlack):
    """The bench's fake Slack, kept for reading its calls after the run."""

    async def start(self):
        fakes.append(self)
        return await super().start()


def busiest_minute(times: list[float]) -> int:
    """The most calls in any 60 s window."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > 60.0:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def tiers_report(fake) -> str:
    by_method: dict[str, list[float]] = defaultdict(list)
    limited: dict[str, int] = defaultdict(int)
    for call in fake.calls:
        if call.method in TIERS:
            by_method[call.method].append(call.at)
            if call.status == 429:
                limited[call.method] += 1
    lines = ["| method | tier (calls/min) | calls, busiest 60 s | 429s |", "|---|---|---|---|"]
    for method in sorted(by_method):
        lines.append(f"| {method} | {TIERS[method]} | {busiest_minute(by_method[method])} | {limited[method]} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rate", type=float, default=4.0, help="msg/s, all to one workspace")
    p.add_argument("--seconds", type=float, default=90.0)
    p.add_argument("--channels", type=int, default=200)
    a = p.parse_args()
    args = argparse.Namespace(rates=f"{a.rate:g}", seconds=a.seconds, max_count=100_000, rounds=1, workers=a.workers,
                              channels=a.channels, ttft=0.3, tokens=48, tps=40.0, grace=120.0, log_level="WARNING",
                              env=[], json=None, profile=None, py_spy=None)
    load_slack.FakeSlack = RecordedSlack
    asyncio.run(load_slack.main(args))
    print(f"\nSlack tiers, {a.workers} worker(s), {a.rate:g} msg/s for {a.seconds:g} s to one workspace:\n")
    print(tiers_report(fakes[-1]))


if __name__ == "__main__":
    main()
