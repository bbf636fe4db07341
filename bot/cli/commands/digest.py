"""`aibot digest list|now|off`: the daily digest schedules from the terminal.

`now -` reads a chat transcript from stdin (one message per line, `name: text`) and
prints its digest, through the same router handler as `/digest now` (a synthetic
scheduled-style event whose conversation's history is the transcript). A digest of a
live Slack/Discord channel needs the running bot: type `/digest now` there.
"""
from __future__ import annotations

import json
import sys
from datetime import timedelta

from bot.app import App
from bot.core.errors import UserError
from bot.core.messages import HistoryItem, Incoming, utcnow
from bot.core.surface import Limits
from patterns.batch import times
from patterns.batch.digest import DigestWindow
from patterns.batch.schedules import DigestStore

PLATFORMS = ("slack", "discord", "console")


def add_parser(sub) -> None:
    p = sub.add_parser("digest", help="daily digest schedules: list, now, off")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    ls = verbs.add_parser("list", help="every digest schedule")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=run_list)
    now = verbs.add_parser("now", help="digest a transcript from stdin (-), one `name: text` message per line")
    now.add_argument("source", nargs="?", help="- to read a chat transcript from stdin")
    now.add_argument("--platform", choices=PLATFORMS, help="a live channel's platform (needs the running bot)")
    now.add_argument("--channel")
    now.add_argument("--workspace")
    now.set_defaults(func=run_now)
    off = verbs.add_parser("off", help="remove a channel's digest schedule")
    off.add_argument("--platform", required=True, choices=PLATFORMS)
    off.add_argument("--channel", required=True)
    off.add_argument("--workspace", default=None, help="Slack workspace / Discord guild id (default: the only one)")
    off.set_defaults(func=run_off)


def _row(s, now) -> dict:
    nxt = times.following(s.spec, now).astimezone(s.spec.zone)
    return {
        "platform": s.platform, "workspace": s.tenant, "channel": s.channel, "time": f"{s.spec.at:%H:%M}",
        "zone": s.spec.tz, "weekdays": s.spec.weekdays, "last_period": s.last_period, "next_run": nxt.isoformat(),
    }


async def run_list(args, settings) -> int:
    async with await App.open(settings) as app:
        rows = [_row(s, utcnow()) for s in await DigestStore(app.services.db).all()]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("No digest scheduled.")
    else:
        for r in rows:
            days = "weekdays" if r["weekdays"] else "daily"
            print(f"{r['platform']}/{r['workspace']}/{r['channel']}  {r['time']} {r['zone']} {days}  "
                  f"last {r['last_period'] or '-'}  next {r['next_run']}")
    return 0


async def run_off(args, settings) -> int:
    async with await App.open(settings) as app:
        store = DigestStore(app.services.db)
        matches = [s for s in await store.all() if s.platform == args.platform and s.channel == args.channel
                   and (args.workspace is None or s.tenant == args.workspace)]
        if not matches:
            print(f"There is no digest scheduled for {args.platform} channel {args.channel}.", file=sys.stderr)
            return 1
        if len(matches) > 1:
            print("aibot: that channel has schedules in several workspaces; pass --workspace.", file=sys.stderr)
            return 2
        s = matches[0]
        await store.remove(platform=s.platform, tenant=s.tenant, channel=s.channel)
    print(f"Daily digest off for {s.platform}/{s.tenant}/{s.channel}.")
    return 0


class _Transcript:
    """A conversation whose history is the stdin transcript and whose posts are printed."""

    limits = Limits()

    def __init__(self, items: list[HistoryItem]) -> None:
        self.items = items
        self.posted: list[str] = []

    async def post(self, text: str, *, ephemeral: bool = False) -> str:
        self.posted.append(text)
        return str(len(self.posted))

    async def edit(self, message_id: str, text: str) -> None:
        self.posted[int(message_id) - 1] = text

    async def history(self, *, limit: int, since=None, scope="channel") -> list[HistoryItem]:
        return self.items[-limit:]

    async def download(self, attachment) -> bytes:
        raise UserError("A transcript has no attachments.")


def parse_transcript(text: str, now) -> list[HistoryItem]:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    items = []
    for i, line in enumerate(lines):
        user, sep, body = line.partition(":")
        if not sep or not user.strip() or len(user) > 80 or not body.strip():
            user, body = "someone", line
        items.append(HistoryItem(user=user.strip(), text=body.strip(), ts=now - timedelta(seconds=len(lines) - i)))
    return items


async def run_now(args, settings) -> int:
    if args.platform is not None and args.source is None:
        print(f"aibot: the command line cannot reach the running {args.platform} bot; "
              f"type /digest now in that channel instead.", file=sys.stderr)
        return 1
    if args.source != "-":
        print("aibot: digest now takes - (a transcript on stdin); for a live channel type /digest now there.",
              file=sys.stderr)
        return 2
    from bot.cli.commands.summarize import read_text

    text = read_text("-", settings.max_summarize_chars)
    now = utcnow()
    window = DigestWindow(since=None, until=now + timedelta(seconds=1), tz="UTC")
    conv = _Transcript(parse_transcript(text, now))
    msg = Incoming(platform="cli", tenant="cli", channel="stdin", user="cli", user_name="cli", text="now",
                   command="digest", id="digest:stdin", ts=now, raw=window)
    async with await App.open(settings) as app:
        await app.router.dispatch(msg, conv)
    if window.outcome is None:
        print("aibot: " + (conv.posted[-1] if conv.posted else "the digest failed."), file=sys.stderr)
        return 1
    print("\n".join(conv.posted))
    return 0
