"""Streaming pattern, the answerer of last resort: a mention or DM gets a streamed answer
with the conversation (thread, or channel/DM) as context, trimmed to the token budget
with the newest messages kept."""
from __future__ import annotations

from bot.core import tokens
from bot.core.commands import answerer
from bot.core.context import context_messages
from bot.core.feature import Feature
from bot.core.llm import ChatOptions
from bot.core.messages import Incoming

PATTERN = "streaming"

SYSTEM = (
    "You are {bot}, a helpful assistant that lives in a team's chat ({platform}). "
    "Answer the latest message directly and concisely, in the language it is written in. "
    "Use Markdown sparingly: short lists, and code blocks for code. "
    "If you do not know something, say so rather than guessing."
)


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


class Chat(Feature):
    """Plain streamed chat: list it last, it takes every mention the others leave."""

    name = "chat"

    @answerer
    async def answer(self, ctx, msg: Incoming):
        settings = self.host.settings
        system = SYSTEM.format(bot=settings.bot_name, platform=msg.platform)
        messages = await build_messages(ctx, msg, system)
        return self.services.llm.stream(
            messages, call=ctx.call(PATTERN), options=ChatOptions(max_tokens=settings.answer_max_tokens)
        )

    def mount(self, http) -> None:
        from patterns.chat.api import mount

        mount(http, self.host)


FEATURE = Chat
