"""The router: every incoming message goes through one decision table to one pattern.

Also the one place where own/other bots' messages and duplicate deliveries are dropped,
where input limits are enforced, where answers in one thread are serialized, and where
errors are caught and turned into one clear reply.

Handlers are plain async functions `(ctx, msg) -> result`; the result is sent for them:
`str` or `Reply` is posted, an async iterable of text is streamed with the shared
renderer, `None` sends nothing. Decorators only record metadata, so
`router.command("summarize")(fn)` works the same in a test.
"""
from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.core.errors import LLMError, UserError, user_message_for
from bot.core.messages import CallInfo, Incoming, Reply
from bot.core.surface import Conversation

if TYPE_CHECKING:
    from bot.core.services import Services

log = logging.getLogger(__name__)

Handler = Callable[["Context", Incoming], Awaitable[Any]]
Fits = Callable[["Context", Incoming], Awaitable[bool]]

# "add this to the knowledge base", "save to kb", "ingest", "learn this" ...
KB_INTENT = re.compile(
    r"\b(knowledge[\s-]?base|kb|ingest|index|learn|remember|upload|save|add)\b", re.IGNORECASE
)


# ----------------------------------------------------------------------------- table

IGNORE, COMMAND, INGEST, ANSWER, OBSERVE = "ignore", "command", "ingest", "answer", "observe"


@dataclass(frozen=True)
class Route:
    why: str
    when: Callable[[Incoming], bool]
    action: str


ROUTES: tuple[Route, ...] = (
    Route("own or another bot's message", lambda m: m.from_self or m.from_bot, IGNORE),
    Route("slash command", lambda m: m.command is not None, COMMAND),
    Route(
        "files meant for the knowledge base",
        lambda m: bool(m.attachments) and (m.is_dm or (m.mentioned and bool(KB_INTENT.search(m.text)))),
        INGEST,
    ),
    Route("mention, DM, or a thread the bot is in", lambda m: m.mentioned or m.is_dm or m.in_bot_thread, ANSWER),
    Route("anything else: channel history only", lambda m: True, OBSERVE),
)


def decide(msg: Incoming) -> Route:
    return next(r for r in ROUTES if r.when(msg))


# ----------------------------------------------------------------------------- context


@dataclass
class Context:
    """What a handler gets besides the message: the services, where to reply, the router."""

    services: "Services"
    conv: Conversation
    msg: Incoming
    router: "Router"

    @property
    def args(self) -> str:
        """A command's argument text (for a slash command, everything after its name)."""
        return self.msg.text.strip()

    def call(self, pattern: str) -> CallInfo:
        return CallInfo.for_message(pattern, self.msg)


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    help: str
    usage: str


@dataclass(frozen=True)
class Answerer:
    name: str
    handler: Handler
    fits: Fits | None  # None: always fits (the last resort)


# ----------------------------------------------------------------------------- router


class Router:
    def __init__(self, services: "Services") -> None:
        self.services = services
        self.commands: dict[str, Command] = {}
        self.answerers: list[Answerer] = []
        self.ingest: Handler | None = None
        self._locks: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self._tasks: set[asyncio.Task] = set()
        self.command("help", help="list the commands", usage="/help")(self._help)

    # --- registration ---------------------------------------------------------------

    def command(self, name: str, *, help: str, usage: str | None = None) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.commands[name.lower()] = Command(name.lower(), fn, help, usage or f"/{name}")
            return fn

        return register

    def answerer(self, name: str, *, fits: Fits | None = None) -> Callable[[Handler], Handler]:
        """Add a way to answer a mention/DM. Tried in registration order: the first whose
        `fits` says yes answers; register the cheapest fitting pattern last-resort-last."""

        def register(fn: Handler) -> Handler:
            self.answerers.append(Answerer(name, fn, fits))
            return fn

        return register

    def on_ingest(self, fn: Handler) -> Handler:
        self.ingest = fn
        return fn

    # --- dispatch -------------------------------------------------------------------

    def submit(self, msg: Incoming, conv: Conversation) -> asyncio.Task:
        """Handle `msg` in the background (adapters acknowledge first, then submit)."""
        task = asyncio.create_task(self.dispatch(msg, conv))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self) -> None:
        """Wait for every submitted message to be fully answered."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def dispatch(self, msg: Incoming, conv: Conversation) -> None:
        """Route one message and deliver its reply. Never raises."""
        try:
            route = decide(msg)
            if route.action == IGNORE:
                return
            if msg.dedupe_key and not await self.services.dedupe.first_time(msg.dedupe_key):
                log.info("duplicate delivery %s dropped", msg.dedupe_key)
                return
            if route.action == OBSERVE:
                return
            ctx = Context(self.services, conv, msg, self)
            handler = self._handler_for(route.action, msg)
            lock = self._locks.setdefault(msg.thread_key, asyncio.Lock())
            async with lock:
                result = await self._run(handler, ctx, msg)
                await self._deliver(result, conv, ephemeral=msg.command is not None)
        except Exception as exc:
            if _is_expected(exc):
                log.info("%s message in %s: %s", msg.platform, msg.channel, type(exc).__name__)
            else:
                log.exception("handling a %s message in %s failed", msg.platform, msg.channel)
            await _safe_post(conv, user_message_for(exc), ephemeral=msg.command is not None)

    def _handler_for(self, action: str, msg: Incoming) -> Handler:
        if action == COMMAND:
            cmd = self.commands.get(msg.command or "")
            return cmd.handler if cmd else self._unknown_command
        if action == INGEST:
            return self.ingest or self._no_ingest
        return self._answer

    async def _run(self, handler: Handler, ctx: Context, msg: Incoming) -> Any:
        limit = self.services.settings.max_message_chars
        if len(msg.text) > limit:
            raise UserError(
                f"That message is too long for me ({len(msg.text):,} characters; the limit is {limit:,}). "
                "Send it as a file instead, or a shorter excerpt."
            )
        return await handler(ctx, msg)

    async def _deliver(self, result: Any, conv: Conversation, *, ephemeral: bool) -> None:
        if result is None:
            return
        if isinstance(result, Reply):
            if result.text.strip():
                await conv.post(result.text, ephemeral=result.ephemeral)
            return
        if isinstance(result, str):
            if result.strip():
                await conv.post(result)
            return
        if isinstance(result, AsyncIterable):
            from bot.core.render import render_stream

            rendered = await render_stream(result, conv)
            if rendered.error is not None and not _is_expected(rendered.error):
                log.error("a streamed answer failed midway", exc_info=rendered.error)
            return
        raise TypeError(f"handler returned {type(result).__name__}")

    # --- built-in handlers ----------------------------------------------------------

    async def _answer(self, ctx: Context, msg: Incoming) -> Any:
        if not msg.text.strip() and not msg.attachments:
            name = self.services.settings.bot_name
            return f"Ask me something after the mention, e.g. `@{name} what changed in the release plan?` (or /help)."
        for a in self.answerers:
            if a.fits is None or await a.fits(ctx, msg):
                return await a.handler(ctx, msg)
        raise UserError("I have no way to answer that here yet.")

    async def _help(self, ctx: Context, msg: Incoming) -> Reply:
        name = self.services.settings.bot_name
        lines = [f"Mention me (@{name}) or DM me to ask anything. Commands:"]
        for cmd in sorted(self.commands.values(), key=lambda c: c.name):
            lines.append(f"• `{cmd.usage}`: {cmd.help}")
        return Reply("\n".join(lines), ephemeral=True)

    async def _unknown_command(self, ctx: Context, msg: Incoming) -> Reply:
        return Reply(f"I don't know the command /{msg.command}. Type /help to see what I can do.", ephemeral=True)

    async def _no_ingest(self, ctx: Context, msg: Incoming) -> Reply:
        return Reply("I can't add files to a knowledge base here.", ephemeral=True)


def _is_expected(exc: BaseException) -> bool:
    return isinstance(exc, (UserError, LLMError))


async def _safe_post(conv: Conversation, text: str, *, ephemeral: bool = False) -> None:
    try:
        await conv.post(text, ephemeral=ephemeral)
    except Exception:
        log.exception("could not post the error reply either")
