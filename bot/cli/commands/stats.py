"""`aibot stats`: the per-pattern production table from the usage ledger."""
from __future__ import annotations

import json
import sys

from bot.app import App
from bot.core.ledger import format_stats
from bot.core.messages import utcnow
from bot.core.timewindow import parse_window


def add_parser(sub) -> None:
    p = sub.add_parser("stats", help="requests, latency, tokens and cost per pattern")
    p.add_argument("--since", help="only the last window, e.g. 24h, 7d")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


async def run(args, settings) -> int:
    since = None
    if args.since:
        window = parse_window(args.since)
        if window is None:
            print("aibot: --since takes a window like 30m, 24h or 7d", file=sys.stderr)
            return 2
        since = utcnow() - window
    async with await App.open(settings) as app:
        stats = await app.services.ledger.stats(since=since)
    if args.json:
        print(json.dumps([s.as_json() for s in stats], indent=2))
    elif not stats:
        print("No model calls recorded yet.")
    else:
        print(format_stats(stats))
    return 0
