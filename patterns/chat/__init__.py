"""Streaming pattern, the answerer of last resort: a mention or DM gets a streamed answer
with the conversation (thread, or channel/DM) as context, trimmed to the token budget
with the newest messages kept. Images sent with the question go along as image parts
when the chat model can see them (AIBOT_VISION_MODELS); otherwise one sentence says so.

A standalone question (no "it/that/above", no "today/latest", not a reply in a thread,
about nothing the recent conversation states: `bot.core.standalone`) does not depend on
who asks or on the conversation, so it is asked without the history or the speaker's
name and answered through the caches
(`bot.core.answer_cache`): the same or a paraphrased question from anyone in the workspace
reuses the answer, marked as cached. `@bot --fresh <question>` asks the model again."""
from __future__ import annotations

from bot.core import tokens
from bot.core.answer_cache import cached_note, fresh_flag
from bot.core.commands import answerer
from bot.core.context import context_messages
from bot.core.feature import Feature
from bot.core.images import image_parts, images_of, vision_capable
from bot.core.llm import ChatOptions
from bot.core.messages import Incoming
from bot.core.preferences import Preferences
from bot.core.semantic import AnswerKey, version_of
from bot.core.standalone import discussed, is_standalone
from patterns.chat.settings import ChatSettings

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
    """The conversation so far: the thread inside one, else the channel/DM. A mention
    that starts its own thread (Slack answers a channel mention under it) has none yet:
    nothing to read."""
    if msg.thread and msg.thread == msg.id:
        return []
    scope = "thread" if msg.thread else "channel"
    return await ctx.conv.history(limit=ctx.services.settings.history_limit, scope=scope)


async def build_messages(ctx, msg: Incoming, system: str, question: str | None = None,
                         history: list | None = None, images: list[dict] | None = None) -> list[dict]:
    """System prompt, the conversation so far (within budget), then the question (with
    its `images` as content parts, if any)."""
    settings = ctx.services.settings
    question = (msg.text if question is None else question).strip()
    if history is None:
        history = await read_history(ctx, msg)
    budget = settings.context_tokens - settings.answer_max_tokens - tokens.count(system) - tokens.count(question) - 50
    messages = [{"role": "system", "content": system}]
    if budget > 0:
        messages += context_messages(history, budget=budget, exclude_id=msg.id)
    who = msg.user_name or msg.user
    if images:
        text = f"{who}: {question}" if question else f"{who} sent {'an image' if len(images) == 1 else 'images'}."
        messages.append({"role": "user", "content": [{"type": "text", "text": text}, *images]})
    else:
        messages.append({"role": "user", "content": f"{who}: {question}"})
    return messages


def no_vision(model: str) -> str:
    return (f"I can't look at images with the model I use here ({model}); describe what it shows in words, "
            "or ask an admin to set a vision-capable model (AIBOT_VISION_MODELS lists them).")


class Chat(Feature):
    """Plain streamed chat: list it last, it takes every mention the others leave."""

    name = "chat"
    settings_model = ChatSettings
    settings: ChatSettings

    @answerer
    async def answer(self, ctx, msg: Incoming):
        settings = self.host.settings
        prefs = await self.services.prefs.for_message(msg)  # the workspace's persona, language, model
        model = prefs.chat_model or settings.chat_model
        system = system_prompt(settings.bot_name, msg.platform, prefs)
        options = ChatOptions(max_tokens=settings.answer_max_tokens, model=prefs.chat_model)
        images = None
        pictures = images_of(msg.attachments)
        if pictures:
            if not vision_capable(model, self.settings.vision_models):
                return no_vision(model)
            images = await image_parts(ctx.conv, pictures, max_bytes=int(self.settings.max_image_mb * 1_048_576),
                                       max_images=self.settings.max_images)
        fresh, question = fresh_flag(msg.text)
        answers = self.services.answer_cache
        cacheable = (answers is not None and not images and self.services.llm.configured
                     and standalone_message(msg, question))
        history = await read_history(ctx, msg)  # read once: to see what it states, or as context
        said = [it.text for it in history[-RECENT:] if not it.is_bot and it.id != msg.id]
        if not cacheable or discussed(question, said):
            messages = await build_messages(ctx, msg, system, question, history, images)
            return self.services.llm.stream(messages, call=ctx.call(PATTERN), options=options)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
        key = AnswerKey(tenant=msg.tenant, kind="chat", model=model, prompt_version=version_of(system))
        stream = answers.stream(messages, call=ctx.call(PATTERN), options=options, key=key, question=question,
                                fresh=fresh)
        return _marked(stream, f"`@{settings.bot_name} --fresh {_short(question)}`")

    def mount(self, http) -> None:
        from patterns.chat.api import mount

        mount(http, self.host)


async def _marked(stream, how_to_refresh: str):
    async for delta in stream:
        yield delta
    if stream.hit:
        yield cached_note(how_to_refresh)


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split()).replace("`", "'")
    return text if len(text) <= n else text[: n - 1] + "…"


def system_prompt(bot: str, platform: str, prefs: Preferences) -> str:
    """The workspace's persona (else the built-in one), and its answer language if it chose one."""
    system = prefs.persona or SYSTEM.format(bot=bot, platform=platform)
    if prefs.language:
        system += f"\nAlways answer in {prefs.language}, whatever the language of the question."
    return system


FEATURE = Chat
