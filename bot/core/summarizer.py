"""Summarizing text of any length within a per-call token budget (map-reduce).

Used by every feature that summarizes: `/summarize`, daily digests, bulk jobs. Text that
does not fit one call is split by token count at paragraph and sentence boundaries, the
pieces are summarized (in parallel, bounded), and their summaries combined, again in
pieces if need be. The summary keeps the input's language. Calls use the exact-match
cache: the same text summarized twice costs one model call.

The rounds themselves are planned without I/O (`Plan`: a round's requests from the text
it summarizes, the next round or the summary from their outputs), so a caller that sends
each round another way (the OpenAI Batch API: one batch per round) makes exactly the
calls that `summarize` makes.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

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
MAX_ROUNDS = 8  # each round shrinks the text; 8 rounds is far beyond any input limit
TEMPERATURE = 0.2


@dataclass(frozen=True)
class Stage:
    """Where one summary stands: the text this round summarizes; round 0 is the original text."""

    text: str
    round: int = 0


@dataclass(frozen=True)
class Step:
    """One round's model requests (chat messages, in piece order); `final` when the one
    answer is the summary."""

    stage: Stage
    requests: list[list[dict]]
    final: bool


class Plan:
    """The map-reduce as pure rounds: `step` says what to ask, `advance` what comes next."""

    def __init__(self, *, instruction: str, budget_tokens: int, max_tokens: int, model: str | None = None) -> None:
        self.instruction = instruction
        self.piece_budget = max(200, budget_tokens - _PROMPT_OVERHEAD - max_tokens)
        self.options = ChatOptions(model=model, max_tokens=max_tokens, temperature=TEMPERATURE)

    def step(self, stage: Stage) -> Step:
        """The requests of `stage`'s round: the parts of a text over budget, else the final one."""
        final_prompt = self.instruction if stage.round == 0 else COMBINE_PROMPT + self.instruction
        if stage.round >= MAX_ROUNDS:
            return Step(stage, [_messages(final_prompt, tokens.truncate(stage.text, self.piece_budget))], final=True)
        pieces = tokens.split(stage.text, self.piece_budget)
        if len(pieces) <= 1:
            return Step(stage, [_messages(final_prompt, stage.text)], final=True)
        n = len(pieces)
        return Step(stage, [
            _messages(PART_PROMPT.format(i=i + 1, n=n) + "\n\n" + self.instruction, p) for i, p in enumerate(pieces)
        ], final=False)

    def advance(self, step: Step, outputs: list[str]) -> str | Stage:
        """The summary (after a final step), or the next round's stage built from the part summaries."""
        outputs = [o.strip() for o in outputs]
        if step.final:
            return outputs[0]
        combined = "\n\n".join(f"Part {i + 1}:\n{p}" for i, p in enumerate(outputs) if p)
        if tokens.count(combined) >= tokens.count(step.stage.text):  # the model is not shrinking anything
            combined = tokens.truncate(combined, self.piece_budget)
        return Stage(combined, step.stage.round + 1)


def _messages(system: str, body: str) -> list[dict]:
    return [{"role": "system", "content": system}, {"role": "user", "content": body}]


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
    fresh: bool = False,
) -> str:
    """Summarize `text` of any length with at most `budget_tokens` per model call
    (`fresh`: without reusing cached calls; their entries are replaced)."""
    if not text.strip():
        raise UserError("There is nothing to summarize: the text is empty.")
    plan = Plan(instruction=instruction, budget_tokens=budget_tokens, max_tokens=max_tokens, model=model)
    gate = asyncio.Semaphore(concurrency)

    async def one(messages: list[dict]) -> str:
        async with gate:
            result = await llm.complete(messages, call=call, options=plan.options, cache=True, fresh=fresh)
        return result.text

    state: str | Stage = Stage(text)
    while isinstance(state, Stage):
        step = plan.step(state)
        state = plan.advance(step, list(await asyncio.gather(*(one(m) for m in step.requests))))
    return state


def transcript(items: list[HistoryItem], bot_name: str) -> str:
    """A chat history as plain lines, oldest first."""
    lines = []
    for it in items:
        who = bot_name if it.is_bot else it.user
        when = it.ts.strftime("%Y-%m-%d %H:%M")
        lines.append(f"[{when}] {who}: {it.text}")
    return "\n".join(lines)
