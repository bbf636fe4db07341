"""Batch pattern, face one: the daily digest of a channel (`/digest on|off|now|status`).

A digest reads the channel's messages since the last digest through the conversation's
history interface (the adapter pages through the platform's history up to
`limit`), summarizes them map-reduce style with `patterns.summarize.summarize` (topics,
decisions, open questions, action items with owners), adds links to the busiest
threads, and returns one message. Scheduled digests arrive here as a synthetic `/digest
now` event from `patterns.batch.scheduler` (its `raw` is a `DigestWindow`), so they take the same
handler path as a user's command. Model calls are recorded under pattern "batch".
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.errors import UserError
from bot.core.messages import HistoryItem, Incoming, Reply
from patterns.batch import times
from patterns.batch.schedules import DigestStore
from bot.core.summarizer import summarize, transcript

PATTERN = "batch"
DIGEST_PROMPT = (
    "You write the daily digest of a team chat channel for people who missed the day. "
    "Use these sections, leaving out any that would be empty: Topics, Decisions, Open questions, "
    "Action items (each with its owner, as `owner: task`). Refer to people by the names shown. "
    "Be brief; do not invent anything. Write in the language most of the messages use."
)
BUSIEST = 3


@dataclass
class DigestWindow:
    """What the scheduler asks for; the handler fills in the outcome."""

    since: datetime | None
    until: datetime
    tz: str
    outcome: str | None = None  # posted (a digest or a "no activity" line), quiet (nothing posted)
    messages: int = 0


def busiest_threads(items: list[HistoryItem], n: int = BUSIEST) -> list[HistoryItem]:
    threads = [it for it in items if it.reply_count > 0 and it.link]
    return sorted(threads, key=lambda it: (-it.reply_count, it.ts))[:n]


async def compose(ctx, *, since: datetime | None, until: datetime, tz: str) -> tuple[str | None, int]:
    """The digest text for messages in [since, until) and how many there were; None text
    for a quiet channel when AIBOT_DIGEST_QUIET=skip."""
    settings = ctx.services.settings
    items = await ctx.conv.history(limit=settings.digest_max_messages, since=since, scope="channel")
    items = [
        it for it in items
        if not it.is_bot and it.text.strip() and it.ts < until and (since is None or it.ts >= since)
    ]
    zone = times.Spec(datetime.min.time(), tz).zone
    start = f"{since.astimezone(zone):%a %d %b %H:%M}" if since else "the start"
    if not items:
        if settings.digest_quiet == "skip":
            return None, 0
        return f"No activity in this channel since {start} ({tz}).", 0
    summary = await summarize(
        ctx.services.llm, transcript(items, settings.bot_name), call=ctx.call(PATTERN),
        budget_tokens=settings.context_tokens, model=settings.fast_model, instruction=DIGEST_PROMPT,
    )
    n = len(items)
    lines = [f"**Daily digest** ({n:,} message{'s' if n != 1 else ''} since {start}, {tz})", summary]
    hot = busiest_threads(items)
    if hot:
        lines.append("**Busiest threads**")
        for it in hot:
            first = " ".join(it.text.split())[:80]
            lines.append(f"• {it.link} ({it.reply_count} replies): {first}")
    return "\n".join(lines), len(items)


def register(router, services) -> None:
    store = DigestStore(services.db)

    def where(msg: Incoming) -> dict:
        return dict(platform=msg.platform, tenant=msg.tenant, channel=msg.channel)

    @router.command("digest", help="a daily digest of this channel", usage=times.USAGE)
    async def digest_command(ctx, msg: Incoming):
        if isinstance(msg.raw, DigestWindow):  # a scheduled run (patterns.batch.scheduler)
            window = msg.raw
            text, window.messages = await compose(ctx, since=window.since, until=window.until, tz=window.tz)
            window.outcome = "posted" if text else "quiet"  # quiet: nothing to post
            return text
        words = ctx.args.split()
        verb = words[0].lower() if words else "status"
        if verb == "on":
            spec = times.parse_spec(words[1:], default_tz=msg.timezone)
            await store.put(**where(msg), spec=spec, user=msg.user, now=msg.ts)
            nxt = times.following(spec, msg.ts).astimezone(spec.zone)
            return Reply(f"Daily digest on: {spec.describe()}. Next one: {nxt:%a %d %b %H:%M}.", ephemeral=True)
        if verb == "off":
            gone = await store.remove(**where(msg))
            return Reply("Daily digest off for this channel." if gone else "There is no digest scheduled here.", ephemeral=True)
        if verb == "status":
            sched = await store.get(**where(msg))
            if sched is None:
                return Reply(f"No digest scheduled here. Turn one on with {times.EXAMPLE}.", ephemeral=True)
            nxt = times.following(sched.spec, msg.ts).astimezone(sched.spec.zone)
            last = f"last one for {sched.last_period}" if sched.last_period else "none posted yet"
            return Reply(f"Daily digest {sched.spec.describe()}; {last}; next {nxt:%a %d %b %H:%M}.", ephemeral=True)
        if verb == "now":
            sched = await store.get(**where(msg))
            tz = sched.spec.tz if sched else (times.zone_or_none(msg.timezone) or "UTC")
            since = (sched.last_until if sched else None) or msg.ts - timedelta(days=1)
            text, _n = await compose(ctx, since=since, until=msg.ts, tz=tz)
            return text or f"No activity in this channel since the last digest."
        raise UserError(f"I don't know `/digest {verb[:30]}`. Use {times.USAGE}.")
