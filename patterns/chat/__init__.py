"""Streaming pattern, the answerer of last resort: a mention or DM gets a streamed answer
with the conversation (thread, or channel/DM) as context, trimmed to the token budget
with the newest messages kept.

A standalone question (no "it/that/above", no "today/latest", not a reply in a thread,
about nothing the recent conversation states: `bot.core.standalone`) does not depend on
who asks or on the conversation, so it is asked without the history or the speaker's
name and answered through the caches
(`bot.core.answers`): the same or a paraphrased question from anyone in the workspace
reuses the answer, marked as cached. `@bot --fresh <question>` asks the model again."""
from __future__ import annotations

from bot.core import tokens
from bot.core.answers import cached_note, fresh_flag
from bot.core.commands import answerer
from bot.core.context import context_messages
from bot.core.feature import Feature
from bot.core.llm import ChatOptions
from bot.core.messages import Incoming
from bot.core.semantic import AnswerKey, version_of
from bot.core.standalone import discussed, is_standalone

PATTERN = "streaming"

SYSTEM = (
    "You are {bot}, a helpful assistant that lives in a team's chat ({platform}). "
    "Answer the latest message directly and concisely, in the language it is written in. "
    "Use Markdown sparingly: short lists, and code blocks for code. "
    "If you do not know something, say so rather than guessing."
)
RECENT = 20  # messages of the channel read to see whether a question is about them
def standalone_message(msg: Incoming, question: str) -> bool:
    """A question that reads the same from anyone, anywhere, any day."""
    in_thread = bool(msg.thread) and msg.thread != msg.id
    return not in_thread and not msg.in_bot_thread and not msg.attachments and is_standalone(question)


async def read_history(ctx, msg: Incoming) -> list:
    """The conversation so far: the thread inside one, else the channel/DM."""
    scope = "thread" if msg.thread else "channel"
    return await ctx.conv.history(limit=ctx.services.settings.history_limit, scope=scope)


async def build_messages(ctx, msg: Incoming, system: str, question: str | None = None,
                         history: list | None = None) -> list[dict]:
    """System prompt, the conversation so far (within budget), then the question."""
    settings = ctx.services.settings
    question = (msg.text if question is None else question).strip()
    if history is None:
        history = await read_history(ctx, msg)
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
        options = ChatOptions(max_tokens=settings.answer_max_tokens)
        fresh, question = fresh_flag(msg.text)
        answers = self.services.answers
        cacheable = answers is not None and self.services.llm.configured and standalone_message(msg, question)
        history = await read_history(ctx, msg)  # read once: to see what it states, or as context
        said = [it.text for it in history[-RECENT:] if not it.is_bot and it.id != msg.id]
        if not cacheable or discussed(question, said):
            messages = await build_messages(ctx, msg, system, question, history)
            return self.services.llm.stream(messages, call=ctx.call(PATTERN), options=options)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
        key = AnswerKey(tenant=msg.tenant, kind="chat", model=options.model or settings.chat_model,
                        prompt_version=version_of(system))
        stream = answers.stream(messages, call=ctx.call(PATTERN), options=options, key=key, question=question,
                                fresh=fresh)
        return _marked(stream, f"`@{settings.bot_name} --fresh {_short(question)}`")


async def _marked(stream, how_to_refresh: str):
    async for delta in stream:
        yield delta
    if stream.hit:
        yield cached_note(how_to_refresh)


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split()).replace("`", "'")
    return text if len(text) <= n else text[: n - 1] + "…"


FEATURE = Chat
