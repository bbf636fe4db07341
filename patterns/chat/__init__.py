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
from bot.core.preferences import Preferences

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
        prefs = await self.services.prefs.for_message(msg)  # the workspace's persona, language, model
        messages = await build_messages(ctx, msg, system_prompt(settings.bot_name, msg.platform, prefs))
        return self.services.llm.stream(
            messages, call=ctx.call(PATTERN),
            options=ChatOptions(max_tokens=settings.answer_max_tokens, model=prefs.chat_model),
        )

    def mount(self, http) -> None:
        from patterns.chat.api import mount

        mount(http, self.host)


def system_prompt(bot: str, platform: str, prefs: Preferences) -> str:
    """The workspace's persona (else the built-in one), and its answer language if it chose one."""
    system = prefs.persona or SYSTEM.format(bot=bot, platform=platform)
    if prefs.language:
        system += f"\nAlways answer in {prefs.language}, whatever the language of the question."
    return system


FEATURE = Chat
