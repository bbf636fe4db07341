"""Summarizing text of any length within a per-call token budget (map-reduce).

Used by every feature that summarizes: `/summarize`, daily digests, bulk jobs. Text that
does not fit one call is split by token count at paragraph and sentence boundaries, the
pieces are summarized (in parallel, bounded), and their summaries combined, again in
pieces if need be. The summary keeps the input's language. Calls use the exact-match
cache: the same text summarized twice costs one model call.
"""
from __future__ import annotations

import asyncio

from bot.core import tokens
from bot.core.errors import UserError
from bot.core.llm import LLM, ChatOptions
from bot.core.messages import CallInfo, HistoryItem

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
