"""Cost and usage from the usage ledger: `/ai-stats` in chat (for the asker only, and a
workspace's own figures only) and `aibot stats` on the command line (any workspace)."""
from __future__ import annotations

import json
import sys
from typing import Literal

from bot.core.commands import command
from bot.core.costs import CostSettings
from bot.core.feature import Feature
from bot.core.feedback import format_feedback
from bot.core.messages import Incoming, utcnow
from bot.core.reports import DIMENSIONS, Dimension, format_report, usage_report
from bot.core.timewindow import parse_window

_CHAT_BY = ("pattern", "channel", "user", "model")  # a workspace sees its own rows only


class UsageStats(Feature):
    name = "usage"
    settings_model = CostSettings  # the answer cache and budgets: the core's, shown with the usage they govern

    @command("ai-stats", description="Model usage and cost: by pattern, channel, user or model, over a window",
             usage="/ai-stats [24h] [pattern|channel|user|model]", ephemeral=True, admin_only=True)
    async def ai_stats(self, ctx, msg: Incoming, window: str = "",
                       by: Literal["pattern", "channel", "user", "model"] | None = None) -> str:
        """window: only the last window, e.g. 24h or 7d
        by: group by pattern, channel, user or model"""
        if window.lower() in _CHAT_BY and not by:  # `/ai-stats channel`
            window, by = "", window.lower()
        by = by or "pattern"
        since = parse_window(window) if window else None
        if window and since is None:
            return "Give a window like `24h` or `7d`, or nothing for all time."
        start = utcnow() - since if since else None
        # this workspace's own usage only: never another workspace's counts or costs
        rows = await usage_report(self.services.db, by=by, since=start, workspace=msg.tenant, platform=msg.platform,
                                  ledger=self.services.ledger)
        if not rows:
            return "No model calls recorded yet."
        title = f"Model usage in this workspace by {by}" + (f", last {window}" if since else "")
        text = f"{title}:\n```\n{format_report(rows, by=by)}\n```"
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
        p = cli.add("stats", help="requests, latency, tokens, cost and cache savings by pattern, workspace, ...")
        p.add_argument("--since", help="only the last window, e.g. 24h, 7d")
        p.add_argument("--by", choices=DIMENSIONS, default="pattern", help="group by (default: pattern)")
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
    by: Dimension = getattr(args, "by", "pattern") or "pattern"
    async with rt.open() as bot:
        rows = await usage_report(bot.services.db, by=by, since=since, workspace=tenant, platform=platform,
                                  ledger=bot.services.ledger)
        rated = await bot.services.feedback.stats(since=since, platform=platform, tenant=tenant) if bot.services.feedback else []
    if args.json:
        print(json.dumps([r.as_json(by) for r in rows], indent=2))
    elif not rows:
        print("No model calls recorded yet.")
    else:
        print(format_report(rows, by=by))
        if rated:
            print("\nFeedback on answers:")
            print(format_feedback(rated))
    return 0
