"""API-wrapper pattern: `/summarize`, one model call per piece of text.

Text that does not fit the model's context budget is split by token count and
summarized map-reduce style (pieces in parallel, bounded, then their summaries combined,
again in pieces if needed). The summary keeps the input's language. Results are cached
exactly: the same text summarized twice costs one model call.
"""
from __future__ import annotations

import asyncio
import re
from datetime import timedelta

from bot.core import tokens
from bot.core.errors import UserError
from bot.core.llm import LLM, ChatOptions
from bot.core.messages import CallInfo, HistoryItem, Incoming, utcnow

PATTERN = "api_wrapper"

_LANGUAGE = (
    "Write the summary in the same language as the text you are given "
    "(if the text is in German, write German; only use English for English text)."
)
TEXT_PROMPT = (
    "You summarize text for a busy team. Give a short overview sentence, then the key "
    "points as a few bullets. Keep names, numbers and dates exact; do not invent anything. "
    + _LANGUAGE
)
CHAT_PROMPT = (
    "You summarize a chat conversation for someone who missed it. Use these sections, "
    "leaving out any that would be empty: Topics, Decisions, Open questions, Action items "
    "(with owners). Refer to people by the names shown. Be brief. " + _LANGUAGE
)
PART_PROMPT = (
    "This is part {i} of {n} of a longer text. Summarize this part only, keeping every "
    "fact that could matter for a summary of the whole. " + _LANGUAGE
)
COMBINE_PROMPT = (
    "These are summaries of consecutive parts of one longer text. Merge them into one "
    "summary of the whole, without repeating points. "
)

_PROMPT_OVERHEAD = 400  # tokens for instructions and framing
# "@aibot summarize", "summarise this thread please", "tl;dr", "recap the discussion":
# the whole message is the request, nothing else (anything more is a question for chat)
_SUMMARIZE_THREAD = re.compile(
    r"^\s*(?:(?:can|could) you\s+)?(?:please\s+)?(?:summari[sz]e|tl;?dr|recap)"
    r"(?:\s+(?:this|the)\s+(?:thread|conversation|discussion))?(?:\s+(?:please|for me))?\s*[.!?]*\s*$",
    re.IGNORECASE,
)
_WINDOW = re.compile(r"^(\d{1,4})\s*(m|min|mins|minutes?|h|hr|hrs|hours?|d|days?)$", re.IGNORECASE)


async def summarize(
    llm: LLM,
    text: str,
    *,
    call: CallInfo,
    budget_tokens: int,
    model: str | None = None,
    instruction: str = TEXT_PROMPT,
    max_tokens: int = 700,
    concurrency: int = 4,
) -> str:
    """Summarize `text` of any length with at most `budget_tokens` per model call."""
    if not text.strip():
        raise UserError("There is nothing to summarize: the text is empty.")
    piece_budget = max(200, budget_tokens - _PROMPT_OVERHEAD - max_tokens)
    options = ChatOptions(model=model, max_tokens=max_tokens, temperature=0.2)
    gate = asyncio.Semaphore(concurrency)

    async def one(system: str, body: str) -> str:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": body}]
        async with gate:
            result = await llm.complete(messages, call=call, options=options, cache=True)
        return result.text.strip()

    final_prompt = instruction
    for _round in range(8):  # each round shrinks the text; 8 rounds is far beyond any input limit
        pieces = tokens.split(text, piece_budget)
        if len(pieces) <= 1:
            return await one(final_prompt, text)
        n = len(pieces)
        partials = await asyncio.gather(
            *(one(PART_PROMPT.format(i=i + 1, n=n) + "\n\n" + instruction, p) for i, p in enumerate(pieces))
        )
        combined = "\n\n".join(f"Part {i + 1}:\n{p}" for i, p in enumerate(partials) if p)
        if tokens.count(combined) >= tokens.count(text):  # the model is not shrinking anything
            combined = tokens.truncate(combined, piece_budget)
        text, final_prompt = combined, COMBINE_PROMPT + instruction
    return await one(final_prompt, tokens.truncate(text, piece_budget))


def transcript(items: list[HistoryItem], bot_name: str) -> str:
    """A chat history as plain lines, oldest first."""
    lines = []
    for it in items:
        who = bot_name if it.is_bot else it.user
        when = it.ts.strftime("%Y-%m-%d %H:%M")
        lines.append(f"[{when}] {who}: {it.text}")
    return "\n".join(lines)


def parse_window(arg: str) -> timedelta | None:
    """`4h`, `30m`, `2d`, `90 minutes` as a time window; None if `arg` is not one."""
    m = _WINDOW.match(arg.strip())
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2).lower()
    if unit.startswith("m"):
        return timedelta(minutes=n)
    if unit.startswith("h"):
        return timedelta(hours=n)
    return timedelta(days=n)


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
        span = f" in the last {_describe(window)}" if window else ""
        return f"There's nothing to summarize{span}: no messages found."
    body = transcript(items, settings.bot_name)
    summary = await summarize(
        services.llm, body, call=ctx.call(PATTERN), budget_tokens=settings.context_tokens,
        model=settings.fast_model, instruction=CHAT_PROMPT,
    )
    where = "this thread" if scope == "thread" else "this channel"
    span = f", last {_describe(window)}" if window else ""
    return f"**Summary of {where}{span}** ({len(items)} messages)\n{summary}"


def _describe(window: timedelta) -> str:
    minutes = int(window.total_seconds() // 60)
    if minutes % (60 * 24) == 0:
        d = minutes // (60 * 24)
        return f"{d} day{'s' if d != 1 else ''}"
    if minutes % 60 == 0:
        h = minutes // 60
        return f"{h} hour{'s' if h != 1 else ''}"
    return f"{minutes} minutes"


def register(router, services) -> None:
    settings = services.settings

    async def fits_thread_summary(ctx, msg: Incoming) -> bool:
        return asks_for_thread_summary(msg)

    @router.answerer("summarize_thread", fits=fits_thread_summary)
    async def summarize_thread(ctx, msg: Incoming) -> str:
        return await summarize_conversation(ctx, msg, None)

    @router.command(
        "summarize",
        help="summarize this thread or channel, the last hours (`4h`), or the text you give",
        usage="/summarize [4h | text]",
    )
    async def summarize_command(ctx, msg: Incoming) -> str:
        arg = ctx.args
        window = parse_window(arg) if arg else None
        if not arg or window is not None:
            return await summarize_conversation(ctx, msg, window)
        return await summarize(
            services.llm, arg, call=ctx.call(PATTERN), budget_tokens=settings.context_tokens,
            model=settings.fast_model,
        )


def asks_for_thread_summary(msg: Incoming) -> bool:
    """A mention inside a thread (not one starting it) that only asks for its summary."""
    return bool(msg.thread) and msg.thread != msg.id and bool(_SUMMARIZE_THREAD.match(msg.text))
