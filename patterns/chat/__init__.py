"""Streaming pattern, the answerer of last resort: a mention or DM gets a streamed answer
with the conversation (thread, or channel/DM) as context, trimmed to the token budget
with the newest messages kept."""
from __future__ import annotations

from bot.core import tokens
from bot.core.llm import ChatOptions
from bot.core.messages import HistoryItem, Incoming

PATTERN = "streaming"

SYSTEM = (
    "You are {bot}, a helpful assistant that lives in a team's chat ({platform}). "
    "Answer the latest message directly and concisely, in the language it is written in. "
    "Use Markdown sparingly: short lists, and code blocks for code. "
    "If you do not know something, say so rather than guessing."
)


def context_messages(items: list[HistoryItem], *, budget: int, exclude_id: str = "") -> list[dict]:
    """History as chat messages, oldest first, newest kept within `budget` tokens."""
    items = [it for it in items if it.text.strip() and (not exclude_id or it.id != exclude_id)]
    rendered = [it.text if it.is_bot else f"{it.user}: {it.text}" for it in items]
    keep = tokens.keep_newest(rendered, budget)
    out = []
    for it, text in zip(items[len(items) - keep :], rendered[len(rendered) - keep :]):
        out.append({"role": "assistant" if it.is_bot else "user", "content": text})
    return out


async def build_messages(ctx, msg: Incoming, system: str) -> list[dict]:
    """System prompt, the conversation so far (within budget), then the question."""
    settings = ctx.services.settings
    question = msg.text.strip()
    scope = "thread" if msg.thread else "channel"
    history = await ctx.conv.history(limit=settings.history_limit, scope=scope)
    budget = settings.context_tokens - settings.answer_max_tokens - tokens.count(system) - tokens.count(question) - 50
    messages = [{"role": "system", "content": system}]
    if budget > 0:
        messages += context_messages(history, budget=budget, exclude_id=msg.id)
    who = msg.user_name or msg.user
    messages.append({"role": "user", "content": f"{who}: {question}"})
    return messages


def register(router, services) -> None:
    settings = services.settings

    @router.answerer("chat")
    async def answer(ctx, msg: Incoming):
        system = SYSTEM.format(bot=settings.bot_name, platform=msg.platform)
        messages = await build_messages(ctx, msg, system)
        return services.llm.stream(
            messages, call=ctx.call(PATTERN), options=ChatOptions(max_tokens=settings.answer_max_tokens)
        )
