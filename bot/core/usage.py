"""Cost and usage per pattern, from the usage ledger: `/ai-stats` in chat (for the asker
only) and `aibot stats` on the command line."""
from __future__ import annotations

import json
import sys

from bot.core.commands import command
from bot.core.feature import Feature
from bot.core.feedback import format_feedback
from bot.core.ledger import format_stats
from bot.core.messages import Incoming, utcnow
from bot.core.timewindow import parse_window


class UsageStats(Feature):
    name = "usage"

    @command("ai-stats", description="Model usage per pattern: requests, latency, tokens, cost",
             usage="/ai-stats [24h]", ephemeral=True, admin_only=True)
    async def ai_stats(self, ctx, msg: Incoming, window: str = "") -> str:
        """window: only the last window, e.g. 24h or 7d"""
        since = parse_window(window) if window else None
        if window and since is None:
            return "Give a window like `24h` or `7d`, or nothing for all time."
        # this workspace's own usage only: never another workspace's counts or costs
        start = utcnow() - since if since else None
        stats = await self.services.ledger.stats(since=start, platform=msg.platform, tenant=msg.tenant)
        if not stats:
            return "No model calls recorded yet."
        title = f"Model usage of this workspace, last {window}" if since else "Model usage of this workspace"
        text = f"{title}:\n```\n{format_stats(stats)}\n```"
        rated = (await self.services.feedback.stats(since=start, platform=msg.platform, tenant=msg.tenant)
                 if self.services.feedback else [])
        if rated:
            text += f"\nFeedback on answers:\n```\n{format_feedback(rated)}\n```"
        return text

    def mount(self, http) -> None:
        from bot.core.dashboard import mount  # the usage dashboard, /dashboard

        mount(http, self.services)

    @classmethod
    def add_cli(cls, cli) -> None:
        p = cli.add("stats", help="requests, latency, tokens and cost per pattern")
        p.add_argument("--since", help="only the last window, e.g. 24h, 7d")
        p.add_argument("--tenant", metavar="PLATFORM:TENANT", help="one workspace only, e.g. slack:T012AB3CD")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(run=stats_command)


async def stats_command(args, rt) -> int:
    since = None
    if args.since:
        window = parse_window(args.since)
        if window is None:
            print("aibot: --since takes a window like 30m, 24h or 7d", file=sys.stderr)
            return 2
        since = utcnow() - window
    platform = tenant = None
    if args.tenant:
        platform, sep, tenant = args.tenant.partition(":")
        if not (sep and platform and tenant):
            print("aibot: --tenant takes PLATFORM:TENANT, e.g. slack:T012AB3CD", file=sys.stderr)
            return 2
    async with rt.open() as bot:
        stats = await bot.services.ledger.stats(since=since, platform=platform, tenant=tenant)
        rated = await bot.services.feedback.stats(since=since, platform=platform, tenant=tenant) if bot.services.feedback else []
    if args.json:
        print(json.dumps([s.as_json() for s in stats], indent=2))
    elif not stats:
        print("No model calls recorded yet.")
    else:
        print(format_stats(stats))
        if rated:
            print("\nFeedback on answers:")
            print(format_feedback(rated))
    return 0
