"""The router: every incoming message goes through one decision table to one handler.

Also the one place where own/other bots' messages and duplicate deliveries are dropped,
where input limits and admin-only commands are enforced, where answers in one conversation
are serialized (and the process's in-flight work bounded, `bot.core.load`), and where
errors are caught and turned into one clear reply.

Handlers are plain async functions: a command's `(ctx, msg, **options)` with the options
its declaration (`bot.core.commands`) types, an answerer's or ingestion's `(ctx, msg)`.
The result is sent for them: `str` or `Reply` is posted, an async iterable of text is
streamed with the renderer, `None` sends nothing. Features plug their handlers in with
`include`; `router.command("name", description=...)(fn)` does the same for one function.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import weakref
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.core.answers import Press
from bot.core.commands import CommandSet, CommandSpec, Group, declarations, declare, parse, subcommand, typed
from bot.core.errors import LLMError, UserError, user_message_for
from bot.core import priority
from bot.core.load import QUEUED
from bot.core.priority import is_bulk
from bot.core.answer_watch import AnswerWatch
from bot.core.images import only_images
from bot.core.logs import request_scope
from bot.core.messages import CallInfo, Incoming, Reply
from bot.core.journal import CLOSED, DELIVERED, Entry
from bot.core.outage import DELAYED, Outage, is_db_outage
from bot.core.presses import handle_press
from bot.core.recovery import Recovery
from bot.core.render import THINKING, Rendered, render_stream
from bot.core.roles import BotAdmins, refusal
from bot.core.surface import Conversation, post_whole

if TYPE_CHECKING:
    from bot.core.services import Services

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[Any]]

# "add this to the knowledge base", "save to kb", "ingest", "learn this" ...
KB_INTENT = re.compile(
    r"\b(knowledge[\s-]?base|kb|ingest|index|learn|remember|upload|save|add)\b", re.IGNORECASE
)


KB_NAMED = re.compile(r"\b(knowledge[\s-]?base|kb)\b", re.IGNORECASE)

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
    Route("files meant for the knowledge base", lambda m: for_knowledge_base(m), INGEST),
    Route("mention, DM, or a thread the bot is in", lambda m: m.mentioned or m.is_dm or m.in_bot_thread, ANSWER),
    Route("anything else: channel history only", lambda m: True, OBSERVE),
)


def for_knowledge_base(m: Incoming) -> bool:
    """Files in a DM, or with a mention that asks to add them; images only when the
    knowledge base is named (otherwise they come with a question, for a vision model)."""
    if not m.attachments:
        return False
    if only_images(m.attachments):
        return (m.is_dm or m.mentioned) and bool(KB_NAMED.search(m.text))
    return m.is_dm or (m.mentioned and bool(KB_INTENT.search(m.text)))


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

    def call(self, pattern: str) -> CallInfo:
        return CallInfo.for_message(pattern, self.msg)


@dataclass(frozen=True)
class Command:
    spec: CommandSpec
    handler: Handler


HELP = CommandSpec("help", "List the commands", ephemeral=True)  # the router's own


@dataclass(frozen=True)
class Handled:
    """What became of one message: the route it took, what its handler returned, and the
    error that replaced the answer, if any."""

    action: str
    result: Any = None
    error: BaseException | None = None
    cut: BaseException | None = None  # a streamed answer failed midway: delivered with a note saying so


# ----------------------------------------------------------------------------- router


class Router:
    def __init__(self, services: "Services") -> None:
        self.services = services
        self.commands: dict[str, Command] = {}
        self.groups: dict[str, Group] = {}
        self.answerers: list[Handler] = []
        self.ingest: Handler | None = None
        self._locks: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self._tasks: set[asyncio.Task] = set()
        self.admins = BotAdmins(services.settings.admins)
        self.outage = Outage(db=services.db, redeliver=lambda m, c: self.dispatch(m, c, redelivery=True))
        self.journal = getattr(services, "journal", None)  # bot.core.journal.Journal (None: not journaled)
        self.recovery = Recovery(journal=self.journal, submit=lambda m, c: self.submit(m, c, redelivery=True),
                                 redo_within=services.settings.journal_redo_within) if self.journal else None
        if self.journal is not None and self.journal.spool is not None:
            self.outage.on_drained = self.journal.spool.clear
        self.add(HELP, self._help)

    # --- registration ---------------------------------------------------------------

    def include(self, feature: Any) -> None:
        """Plug in a feature's declared commands, answerers and ingestion, and its groups.
        Answerers are asked in the order they are included."""
        for group in getattr(feature, "groups", ()):
            self.groups[group.name] = group
        for attr, decl in declarations(feature):
            handler = getattr(feature, attr)
            if decl.kind == "command":
                if decl.spec.name in self.commands:  # two features declaring one name: say so at start
                    raise ValueError(f"/{decl.spec.name} is declared twice ({type(feature).__name__} and before it)")
                self.add(decl.spec, handler)
            elif decl.kind == "answerer":
                self.answerers.append(handler)
            else:
                self.ingest = handler

    def add(self, spec: CommandSpec, handler: Handler) -> None:
        """Register (or replace) the handler of a declared command."""
        if spec.group and spec.group not in self.groups:
            raise ValueError(f"/{spec.name}: declare the group {spec.group!r} first (Feature.groups)")
        self.commands[spec.name] = Command(spec, handler)

    def command(self, name: str, *, description: str, **flags: Any) -> Callable[[Handler], Handler]:
        """Declare and register one function as a command (options from its signature)."""

        def register(fn: Handler) -> Handler:
            self.add(declare(fn, name=name, description=description, **flags), fn)
            return fn

        return register

    def on_ingest(self, fn: Handler) -> Handler:
        self.ingest = fn
        return fn

    @property
    def declared(self) -> CommandSet:
        """Every registered command and group, for /help, Discord's tree, the manifest."""
        return CommandSet(tuple(c.spec for c in self.commands.values()), tuple(self.groups.values()))

    # --- dispatch -------------------------------------------------------------------

    def submit(self, msg: Incoming, conv: Conversation, *, redelivery: bool = False) -> asyncio.Task:
        """Handle `msg` in the background (adapters acknowledge first, then submit)."""
        task = asyncio.create_task(self.dispatch(msg, conv, redelivery=redelivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self) -> None:
        """Wait for every submitted message to be fully answered."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close_in_flight(self) -> None:
        """Cancel every answer still running (the renderer closes each with a note)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def dispatch(self, msg: Incoming | Press, conv: Conversation, *, redelivery: bool = False) -> Handled:
        """Route one message (or a press of an answer's control) and deliver its reply.
        Never raises. `redelivery`: a message accepted before (held through a database
        outage, or taken over from a stopped process by recovery): no dedupe check."""
        if isinstance(msg, Press):
            return await self._press(msg, conv)
        route = decide(msg)
        with request_scope(msg.platform, inherit=True):  # log lines and model calls of this event share its id
            return await self._dispatch(route, msg, conv, redelivery=redelivery)

    async def _dispatch(self, route: Route, msg: Incoming, conv: Conversation, *, redelivery: bool) -> Handled:
        watch = AnswerWatch(msg.platform, route.action)
        entry: Entry | None = None
        journaled = False
        try:
            if route.action == IGNORE:
                return Handled(IGNORE)
            journaled = self.journal is not None and self.journal.wants(msg, route.action)
            if msg.dedupe_key and not redelivery and not await self.services.dedupe.first_time(
                    msg.dedupe_key, journal=self.journal.row(msg, route.action) if journaled else None):
                log.info("duplicate delivery %s dropped", msg.dedupe_key)
                return Handled(IGNORE)
            if route.action == OBSERVE:
                return Handled(OBSERVE)
            if journaled and redelivery and not await self.journal.ensure(msg, route.action):
                log.info("%s message %s is answered by another process now", msg.platform, msg.dedupe_key)
                return Handled(IGNORE)
            entry = self.journal.entry(msg) if journaled else None
            log.info("%s %s in %s", msg.platform, route.action, msg.channel,
                     extra={"event": "message", "platform": msg.platform, "route": route.action})
            msg = self.admins.mark(msg)  # the bot's own admins (AIBOT_ADMINS) count as workspace admins
            ctx = Context(self.services, conv, msg, self)
            # one answer at a time per conversation (thread, reply chain, DM), any number
            # of conversations at once up to the in-flight limit; past it, wait (backpressure)
            lock = self._locks.setdefault(msg.conversation_key, asyncio.Lock())
            # bulk (a scheduled digest, files being added) goes behind questions on every shared resource
            bulk = msg.unattended or route.action == INGEST or is_bulk()
            async with watch.waiting(lock):
                notice = _Status(conv, QUEUED)
                # the "thinking" status at once, before any lookup (a knowledge-base search may
                # wait for the embedding model); the renderer clears it beside the first words
                thinking = _Status(conv, THINKING) if route.action == ANSWER and not msg.unattended else None
                try:
                    async with self._slot(notify=notice.show, bulk=bulk):
                        with watch.running(), priority.bulk(bulk):
                            self._check_size(msg, conv)
                            if thinking is not None:
                                await thinking.show()
                            result, ephemeral = await self._handle(route.action, ctx, msg)
                            rendered = await self._deliver(result, conv, ephemeral=ephemeral, msg=msg,
                                                           thinking=thinking, entry=entry)
                            watch.rendered(rendered)
                            if entry is not None:
                                entry.end(DELIVERED)
                except asyncio.CancelledError:  # shutdown: the renderer closed it with a note
                    if entry is not None:
                        entry.end(CLOSED)
                    raise
                finally:
                    if thinking is not None:
                        await thinking.clear()
                    await notice.clear()
            cut = rendered.error if rendered is not None else None
            watch.done("ok" if cut is None else "cut")
            return Handled(route.action, result, cut=cut)
        except Exception as exc:
            if is_db_outage(exc) and not msg.unattended and self.outage.hold(msg, conv):
                log.warning("%s message in %s held: the database is unreachable", msg.platform, msg.channel)
                if journaled and self.journal.spool is not None and not redelivery:  # survives a crash too
                    self.journal.spool.add(msg, route.action)
                if not redelivery:  # said once
                    await _safe_post(conv, DELAYED, ephemeral=msg.command is not None)
                return Handled(route.action, error=exc)  # its journal row stays open: handled again
            if entry is not None:  # the error reply below is what the asker gets
                entry.end(CLOSED)
            if _is_expected(exc):
                log.info("%s message in %s: %s", msg.platform, msg.channel, type(exc).__name__)
            else:
                log.exception("handling a %s message in %s failed", msg.platform, msg.channel)
            if not msg.unattended:  # nobody waits for a scheduled run: the log has it
                await _safe_post(conv, user_message_for(exc), ephemeral=msg.command is not None)
            watch.done("refused" if isinstance(exc, UserError) else "failed")
            return Handled(route.action, error=exc)

    def _slot(self, *, notify, bulk: bool):
        load = getattr(self.services, "load", None)
        return load.slot(notify=notify, bulk=bulk) if load is not None else contextlib.nullcontext()

    async def _handle(self, action: str, ctx: Context, msg: Incoming) -> tuple[Any, bool]:
        """The handler's result, and whether a plain-text result is for the asker only."""
        if action == COMMAND:
            found = self._resolve(msg)
            if found is None:
                return self._unknown_command(msg), True
            spec, options, handler = found
            if spec.admin_only and not msg.is_admin:
                raise UserError(refusal(msg.platform, f"use /{spec.name}"))
            return await handler(ctx, msg, **options), spec.ephemeral
        if action == INGEST:
            if self.ingest is None:
                return Reply("I can't add files to a knowledge base here.", ephemeral=True), True
            return await self.ingest(ctx, msg), False
        return await self._answer(ctx, msg), False

    def _resolve(self, msg: Incoming) -> tuple[CommandSpec, dict, Handler] | None:
        """The command a message names and its typed options; None if there is none."""
        name = msg.command or ""
        cmd = self.commands.get(name)
        if cmd is not None:
            if cmd.spec.hidden and msg.options is None:
                return None  # internal commands take typed options from code, never text
            options = typed(cmd.spec, msg.options) if msg.options is not None else parse(
                cmd.spec, msg.text, msg.attachments)
            return cmd.spec, options, cmd.handler
        if name in self.groups:
            spec, rest = subcommand(self.declared.specs, name, msg.text)
            if spec is None:
                word = msg.text.split()[0][:30] if msg.text.split() else ""
                raise UserError(f"I don't know `/{name} {word}`. Use {self.declared.usage(name)}.")
            return spec, parse(spec, rest, msg.attachments), self.commands[spec.name].handler
        return None

    def _check_size(self, msg: Incoming, conv: Conversation) -> None:
        limit = self.services.settings.max_message_chars
        if len(msg.text) > limit:
            # a platform where files cannot be sent (the console) says what works there instead
            hint = getattr(conv, "long_text_hint", None) or "Send it as a file instead, or a shorter excerpt."
            raise UserError(
                f"That message is too long for me ({len(msg.text):,} characters; the limit is {limit:,}). {hint}"
            )

    async def _press(self, press: Press, conv: Conversation) -> Handled:
        try:
            note = await handle_press(self, press, conv)
        except Exception as exc:
            log.exception("a %s press on answer %s failed", press.action, press.answer)
            await _safe_post(conv, user_message_for(exc), ephemeral=True)
            return Handled("press", error=exc)
        if note:
            await _safe_post(conv, note, ephemeral=True)
        return Handled("press", note)

    async def _deliver(self, result: Any, conv: Conversation, *, ephemeral: bool,
                       msg: Incoming | None = None, thinking: "_Status | None" = None,
                       entry: Entry | None = None) -> Rendered | None:
        """Send a handler's result; what the renderer did when it was streamed."""
        if result is None:
            return None
        if isinstance(result, Reply):
            if result.text.strip():
                await post_whole(conv, result.text, ephemeral=result.ephemeral)
            return None
        if isinstance(result, str):
            if result.strip():
                await post_whole(conv, result, ephemeral=ephemeral)
            return None
        if isinstance(result, AsyncIterable):
            answers = self.services.answers
            answer = answers.begin(msg, conv) if msg is not None and not msg.unattended else None
            try:
                with answers.producing(answer):  # its model calls carry its id in the ledger
                    status_on = thinking is not None and thinking.hand_over()
                    rendered = await render_stream(result, conv, answer=answer, status_on=status_on,
                                                   on_message=entry.message if entry is not None else None)
            finally:
                if answer is not None:
                    answers.finish(answer)
            if rendered.error is not None and not _is_expected(rendered.error):
                log.error("a streamed answer failed midway", exc_info=rendered.error)
            return rendered
        raise TypeError(f"handler returned {type(result).__name__}")

    # --- built-in handlers ----------------------------------------------------------

    async def _answer(self, ctx: Context, msg: Incoming) -> Any:
        if not msg.text.strip() and not msg.attachments:
            name = self.services.settings.bot_name
            return f"Ask me something after the mention, e.g. `@{name} what changed in the release plan?` (or /help)."
        for answer in self.answerers:
            result = await answer(ctx, msg)
            if result is not None:
                return result
        raise UserError("I have no way to answer that here yet.")

    async def _help(self, ctx: Context, msg: Incoming) -> str:
        """The command list, from the declarations."""
        name = self.services.settings.bot_name
        declared = self.declared
        lines = [f"Mention me (@{name}) or DM me to ask anything. Commands:"]
        entries = sorted(declared.top_level(), key=lambda c: c.name)
        for entry in entries:
            lines.append(f"• `{declared.usage(entry.name)}`: {entry.description}")
        return "\n".join(lines)

    def _unknown_command(self, msg: Incoming) -> Reply:
        return Reply(f"I don't know the command /{msg.command}. Type /help to see what I can do.", ephemeral=True)


class _Status:
    """A status line on a conversation that can show one (Slack's assistant status,
    Discord's typing): "queued" while a message waits for an in-flight slot, "thinking" as
    soon as it is taken. Failing to show or clear it never disturbs the answer."""

    def __init__(self, conv: Conversation, text: str) -> None:
        self.set_status = getattr(conv, "set_status", None)
        self.text = text
        self.shown = False

    async def show(self) -> None:
        if self.set_status is not None:
            try:
                await self.set_status(self.text)
                self.shown = True
            except Exception:
                log.warning("could not show the %r status", self.text, exc_info=True)

    def hand_over(self) -> bool:
        """The renderer takes it over (and clears it beside the first words): True if shown."""
        shown, self.shown = self.shown, False
        return shown

    async def clear(self) -> None:
        if self.shown:
            self.shown = False
            try:
                await self.set_status(None)
            except Exception:
                log.warning("could not clear the %r status", self.text, exc_info=True)


def _is_expected(exc: BaseException) -> bool:
    return isinstance(exc, (UserError, LLMError))


async def _safe_post(conv: Conversation, text: str, *, ephemeral: bool = False) -> None:
    try:
        await post_whole(conv, text, ephemeral=ephemeral)
    except Exception:
        log.exception("could not post the error reply either")
