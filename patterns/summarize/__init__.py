"""API-wrapper pattern: `/summarize` of a thread, a channel window or the text given,
one model call per piece of text (the map-reduce summarizer is the core's,
`bot.core.summarizer`, shared with digests and bulk jobs)."""
from __future__ import annotations

import re
from datetime import timedelta

from bot.core import tokens
from bot.core.answer_cache import cached_note
from bot.core.answers import FRESH
from bot.core.commands import answerer, command
from bot.core.feature import Feature
from bot.core.messages import Incoming, utcnow
from bot.core.semantic import AnswerKey, version_of
from bot.core.summarizer import CHAT_PROMPT, TEXT_PROMPT, summarize, transcript
from bot.core.timewindow import describe, parse_window

PATTERN = "api_wrapper"

# "@aibot summarize", "summarise this thread please", "tl;dr", "recap the discussion":
# the whole message is the request, nothing else (anything more is a question for chat)
_SUMMARIZE_THREAD = re.compile(
    r"^\s*(?:(?:can|could) you\s+)?(?:please\s+)?(?:summari[sz]e|tl;?dr|recap)"
    r"(?:\s+(?:this|the)\s+(?:thread|conversation|discussion))?(?:\s+(?:please|for me))?\s*[.!?]*\s*$",
    re.IGNORECASE,
)


async def summarize_conversation(ctx, msg: Incoming, window: timedelta | None) -> str:
    """Summary of this thread (inside one), else of the channel's recent messages."""
    services = ctx.services
    settings = services.settings
    since = utcnow() - window if window else None
    scope = "thread" if msg.thread and window is None else "channel"
    limit = settings.history_limit if window is None else max(settings.history_limit, 2_000)
    items = await ctx.conv.history(limit=limit, since=since, scope=scope)
    items = [it for it in items if it.id != msg.id and it.text.strip()]
    if not items:
        span = f" in the last {describe(window)}" if window else ""
        return f"There's nothing to summarize{span}: no messages found."
    body = transcript(items, settings.bot_name)
    prefs = await services.prefs.for_message(msg)
    summary = await summarize(
        services.llm, body, call=ctx.call(PATTERN), budget_tokens=settings.context_tokens,
        model=prefs.fast_model or settings.fast_model, instruction=CHAT_PROMPT,
    )
    where = "this thread" if scope == "thread" else "this channel"
    span = f", last {describe(window)}" if window else ""
    return f"**Summary of {where}{span}** ({len(items)} messages)\n{summary}"


class Summarize(Feature):
    """`/summarize`, and "@bot summarize" inside a thread."""

    name = "summarize"

    @answerer
    async def thread_summary(self, ctx, msg: Incoming) -> str | None:
        """A mention in a thread asking only for its summary; other mentions are not ours."""
        if not asks_for_thread_summary(msg):
            return None
        return await summarize_conversation(ctx, msg, None)

    @command(
        "summarize",
        description="Summarize this thread or channel, the last hours (4h), or the text you give",
        usage="/summarize [--fresh] [4h | text]",
    )
    async def summarize_command(self, ctx, msg: Incoming, what: str = "", fresh: bool = False) -> str:
        """what: a time window like 4h or 2d, or the text to summarize; empty: the recent messages
        fresh: summarize the text again instead of reusing a cached summary"""
        window = parse_window(what) if what else None
        if not what or window is not None:
            return await summarize_conversation(ctx, msg, window)
        return await self.summarize_text(ctx, what, fresh=fresh)

    async def summarize_text(self, ctx, text: str, *, fresh: bool = False) -> str:
        """A pasted text's summary; the same text again (any spacing or case, anyone in the
        workspace) is answered from the answer cache and says so."""
        settings = self.host.settings
        prefs = await self.services.prefs.for_message(ctx.msg)
        model = prefs.fast_model or settings.fast_model
        semantic = self.services.answer_cache.semantic if self.services.answer_cache else None
        key = AnswerKey(tenant=ctx.msg.tenant, kind="summary", model=model, prompt_version=version_of(TEXT_PROMPT))
        fresh = fresh or FRESH.get()  # Regenerate asks again
        if semantic is not None and not fresh:
            hit = await semantic.lookup(key, text, None)
            if hit is not None:
                await self.services.llm.record_hit(ctx.call(PATTERN), model,
                                                   prompt_tokens=hit.prompt_tokens,
                                                   completion_tokens=hit.completion_tokens,
                                                   extra={"cache": "summary"})
                return hit.answer + cached_note("`/summarize --fresh <text>`")
        summary = await summarize(
            self.services.llm, text, call=ctx.call(PATTERN), budget_tokens=settings.context_tokens,
            model=model, fresh=fresh,
        )
        if semantic is not None:
            # what a repeat saves: at least one call reading the whole text and writing the summary
            await semantic.store(key, text, None, summary, prompt_tokens=tokens.count(text) + tokens.count(TEXT_PROMPT),
                                 completion_tokens=tokens.count(summary))
        return summary

    def mount(self, http) -> None:
        from patterns.summarize.api import mount

        mount(http, self.host)

    @classmethod
    def add_cli(cls, cli) -> None:
        from patterns.summarize import cli as commands

        commands.add(cli)


def asks_for_thread_summary(msg: Incoming) -> bool:
    """A mention inside a thread (not one starting it) that only asks for its summary."""
    return bool(msg.thread) and msg.thread != msg.id and bool(_SUMMARIZE_THREAD.match(msg.text))


FEATURE = Summarize
