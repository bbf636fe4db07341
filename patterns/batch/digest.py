"""Batch pattern, face one: the daily digest of a channel (`/digest on|off|now|status`).

A digest reads the channel's messages since the last digest through the conversation's
history interface (the adapter pages through the platform's history up to a limit),
summarizes them map-reduce style with the core summarizer (topics, decisions, open
questions, action items with owners), adds links to the busiest threads, and returns
one message. Scheduled digests arrive as the internal command `digest-run` with typed
options (`patterns.batch.scheduler`), so they take the same handler path as a user's
command; the handler's `DigestReply` tells the scheduler what it posted. Model calls are
recorded under pattern "batch".
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.messages import HistoryItem, Incoming, Reply
from bot.core.summarizer import summarize, transcript
from patterns.batch import times
from patterns.batch.schedules import DigestStore
from patterns.batch.settings import BatchSettings

PATTERN = "batch"
DIGEST_PROMPT = (
    "You write the daily digest of a team chat channel for people who missed the day. "
    "Use these sections, leaving out any that would be empty: Topics, Decisions, Open questions, "
    "Action items (each with its owner, as `owner: task`). Refer to people by the names shown. "
    "Be brief; do not invent anything. Write in the language most of the messages use."
)
BUSIEST = 3


@dataclass(frozen=True, slots=True)
class DigestReply(Reply):
    """A digest as the handler returns it: empty text for a quiet channel that gets
    nothing (AIBOT_DIGEST_QUIET=skip), and how many messages it covered."""

    messages: int = 0


def busiest_threads(items: list[HistoryItem], n: int = BUSIEST) -> list[HistoryItem]:
    threads = [it for it in items if it.reply_count > 0 and it.link]
    return sorted(threads, key=lambda it: (-it.reply_count, it.ts))[:n]


class Digests:
    """The `/digest` command and scheduled digests, over the schedules' store."""

    def __init__(self, *, services, settings: BatchSettings) -> None:
        self.services = services
        self.settings = settings
        self.store = DigestStore(services.db)

    async def compose(self, ctx, *, since: datetime | None, until: datetime, tz: str) -> DigestReply:
        """The digest of the channel's messages in [since, until)."""
        core = self.services.settings
        items = await ctx.conv.history(limit=self.settings.digest_max_messages, since=since, scope="channel")
        items = [
            it for it in items
            if not it.is_bot and it.text.strip() and it.ts < until and (since is None or it.ts >= since)
        ]
        zone = times.Spec(datetime.min.time(), tz).zone
        start = f"{since.astimezone(zone):%a %d %b %H:%M}" if since else "the start"
        if not items:
            if self.settings.digest_quiet == "skip":
                return DigestReply("")
            return DigestReply(f"No activity in this channel since {start} ({tz}).")
        prefs = await self.services.prefs.for_message(ctx.msg)  # the workspace's fast model, if it chose one
        summary = await summarize(
            self.services.llm, transcript(items, core.bot_name), call=ctx.call(PATTERN),
            budget_tokens=core.context_tokens, model=prefs.fast_model or core.fast_model, instruction=DIGEST_PROMPT,
        )
        n = len(items)
        lines = [f"**Daily digest** ({n:,} message{'s' if n != 1 else ''} since {start}, {tz})", summary]
        hot = busiest_threads(items)
        if hot:
            lines.append("**Busiest threads**")
            for it in hot:
                first = " ".join(it.text.split())[:80]
                lines.append(f"• {it.link} ({it.reply_count} replies): {first}")
        return DigestReply("\n".join(lines), messages=n)

    async def command(self, ctx, msg: Incoming, action: str, time: str) -> Reply | str:
        where = dict(platform=msg.platform, tenant=msg.tenant, channel=msg.channel)
        if action == "on":
            spec = times.parse_spec(time.split(), default_tz=msg.timezone)
            await self.store.put(**where, spec=spec, user=msg.user, now=msg.ts)
            nxt = times.following(spec, msg.ts).astimezone(spec.zone)
            return Reply(f"Daily digest on: {spec.describe()}. Next one: {nxt:%a %d %b %H:%M}.", ephemeral=True)
        if action == "off":
            gone = await self.store.remove(**where)
            return Reply("Daily digest off for this channel." if gone else "There is no digest scheduled here.",
                         ephemeral=True)
        if action == "now":
            sched = await self.store.get(**where)
            tz = sched.spec.tz if sched else (times.zone_or_none(msg.timezone) or "UTC")
            since = (sched.last_until if sched else None) or msg.ts - timedelta(days=1)
            digest = await self.compose(ctx, since=since, until=msg.ts, tz=tz)
            return digest.text or "No activity in this channel since the last digest."
        sched = await self.store.get(**where)
        if sched is None:
            return Reply(f"No digest scheduled here. Turn one on with {times.EXAMPLE}.", ephemeral=True)
        nxt = times.following(sched.spec, msg.ts).astimezone(sched.spec.zone)
        last = f"last one for {sched.last_period}" if sched.last_period else "none posted yet"
        return Reply(f"Daily digest {sched.spec.describe()}; {last}; next {nxt:%a %d %b %H:%M}.", ephemeral=True)
