"""Console adapter: the terminal (or a pipe) as one channel.

Each input line is a message. `/name args` is a slash command; a line mentioning the bot
(`@aibot ...`) is addressed to it; any other line is ordinary channel chatter, kept as
history (so `/summarize` alone summarizes the conversation so far). Answers stream to
stdout through the core's renderer (the terminal is an append-only native stream).
Lines are handled one after another, and at EOF the adapter finishes its replies and
closes, so `printf '@aibot hi\\n' | aibot run` prints the answer and exits 0.

At a terminal (stdin and stdout both TTYs) lines come from a prompt with editing and
history (`adapters.console.lines`); replies are Markdown rendered for the terminal when
stdout is one, plain text otherwise (`adapters.console.screen`).
"""
from __future__ import annotations

import asyncio
import getpass
import io
import logging
import os
import re
import sys
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import IO, Literal

from adapters.console import files
from adapters.console.lines import EOF, Lines, Oversized, PipedLines, PromptLines
from adapters.console.screen import PlainScreen, RichScreen, Screen
from bot.core.commands import CommandSet
from bot.core.errors import LLMError, UserError
from bot.core.messages import Attachment, HistoryItem, Incoming, utcnow
from bot.core.surface import Dispatch, Limits

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 8 * 1024 * 1024  # beyond this a line is refused without being held in memory
EXIT_ANSWER_FAILED = 3
_COMMAND = re.compile(r"^/([A-Za-z][\w-]*)(?:\s+(.*))?$", re.DOTALL)
_EOF = object()


def _private_stdin() -> IO[bytes]:
    """A buffered reader of its own on a duplicate of fd 0 (sys.stdin.buffer if none)."""
    try:
        return io.BufferedReader(io.FileIO(os.dup(sys.stdin.fileno()), "rb", closefd=True))
    except (OSError, ValueError, AttributeError):
        return sys.stdin.buffer


class _Oversized:
    def __init__(self, size: int) -> None:
        self.size = size


class ConsoleAdapter:
    name = "console"

    def __init__(
        self,
        *,
        bot_name: str,
        input: IO[bytes] | None = None,
        output: IO[str] | None = None,
        user: str | None = None,
        history_size: int = 1_000,
        max_line_bytes: int = MAX_LINE_BYTES,
        history_file: Path | None = None,
        interactive: bool | None = None,
        rich: bool | None = None,
    ) -> None:
        """`interactive` (a prompt with editing; default: stdin and stdout are TTYs) and
        `rich` (Markdown rendering; default: stdout is a TTY) are detected unless given;
        `history_file` keeps the prompt's history across sessions."""
        self.bot_name = bot_name
        # not sys.stdin's own buffer: a reader thread blocked in it holds its lock, and the
        # interpreter aborts at exit ("Fatal Python error") when it cannot flush stdin
        self._input = input if input is not None else _private_stdin()
        self._output = output if output is not None else sys.stdout
        self.user = user or _login()
        self.history: deque[HistoryItem] = deque(maxlen=history_size)
        self._max_line = max_line_bytes
        self._history_file = history_file
        self._mention = re.compile(rf"(?<![\w@])@{re.escape(bot_name)}\b[,:]?", re.IGNORECASE)
        self._task: asyncio.Task | None = None
        self._seq = 0
        self.tty = _isatty(self._input)
        out_tty = _isatty(self._output)
        self.interactive = self.tty and out_tty if interactive is None else interactive
        use_rich = out_tty if rich is None else rich
        self.screen: Screen = (RichScreen if use_rich else PlainScreen)(self._output, name=bot_name)
        self.failed_answers = 0  # answers replaced by an apology: the model (or the bot) failed

    def exit_status(self) -> int:
        """`aibot run`'s exit code for this session: 3 when input was piped and an answer
        failed, so a script can tell; 0 otherwise (a person at a terminal saw it)."""
        return EXIT_ANSWER_FAILED if self.failed_answers and not self.tty else 0

    # --- lifecycle ------------------------------------------------------------------

    async def start(self, dispatch: Dispatch, *, commands: CommandSet = CommandSet()) -> None:
        """Read lines; the router reads `/command` lines by the declarations itself."""
        lines = self._lines()
        lines.start()
        if self.tty:
            self.screen.notice(
                f"{self.bot_name} console: mention @{self.bot_name} to ask, /help for commands, Ctrl-D to quit."
            )
        self._task = asyncio.create_task(self._serve(dispatch, lines))

    def _lines(self) -> Lines:
        if self.interactive:
            return PromptLines(prompt=f"{self.user}> ", history_file=self._history_file, max_line_bytes=self._max_line)
        return PipedLines(self._input, max_line_bytes=self._max_line)

    async def wait_closed(self) -> None:
        if self._task is not None:
            await self._task

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _serve(self, dispatch: Dispatch, lines: Lines) -> None:
        while True:
            item = await lines.next()
            if item is EOF:
                return
            conv = ConsoleConversation(self)
            if isinstance(item, Oversized):
                await conv.post(
                    f"That message is too long for me ({item.size:,} bytes); I ignored it. "
                    + ConsoleConversation.long_text_hint
                )
                continue
            try:
                text = item.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                await conv.post("That line isn't valid UTF-8 text, so I ignored it.")
                continue
            try:
                msg = self.parse(text)
            except files.Missing as exc:
                await conv.post(f"There is no file {exc.path} (paths are relative to {Path.cwd()}).")
                continue
            if msg is None:
                continue
            if msg.command is None:
                self.history.append(HistoryItem(user=self.user, text=text, ts=msg.ts, id=msg.id))
            handled = await dispatch(msg, conv)
            if _failed(getattr(handled, "error", None) or getattr(handled, "cut", None)):
                self.failed_answers += 1

    # --- normalization --------------------------------------------------------------

    def parse(self, line: str) -> Incoming | None:
        """One input line as an `Incoming`, or None for a blank line; `/kb add PATH...`
        carries the named files as attachments (`files.Missing` for a path that isn't one)."""
        if not line.strip():
            return None
        self._seq += 1
        common = dict(platform="console", tenant="console", channel="console", user=self.user, user_name=self.user,
                      id=f"c{self._seq}", ts=utcnow(), raw=line, is_admin=True)  # the operator
        m = _COMMAND.match(line.strip())
        if m:
            command, text = m.group(1).lower(), (m.group(2) or "").strip()
            if command == "kb" and text.split(maxsplit=1)[0:1] == ["add"]:
                found = files.attachments(text[3:].strip())  # the operator's own files
                if found:
                    return Incoming(text="add", command=command, attachments=found, **common)
            return Incoming(text=text, command=command, **common)
        stripped, n = self._mention.subn(" ", line)
        if n:
            return Incoming(text=" ".join(stripped.split()), mentioned=True, **common)
        return Incoming(text=line, **common)

    # --- output ---------------------------------------------------------------------

    def conversation(self, *, tenant: str = "console", channel: str = "console", thread: str | None = None) -> "ConsoleConversation":
        """The console is one channel: every conversation writes to it."""
        return ConsoleConversation(self)

    def remember(self, text: str) -> None:
        self.history.append(HistoryItem(user=self.bot_name, text=text, ts=utcnow(), is_bot=True))


class ConsoleConversation:
    """Replies for one console line."""

    limits = Limits(max_chars=1_000_000, update_interval=0.02, max_updates=100_000)
    long_text_hint = (  # the router's advice for a message over AIBOT_MAX_MESSAGE_CHARS
        "To summarize a long text, save it to a file and run `aibot summarize FILE` in a shell "
        "(text, .pdf, .docx or .html); to ask questions about it, add it with `/kb add PATH`."
    )

    def __init__(self, adapter: ConsoleAdapter) -> None:
        self.adapter = adapter
        self._posted: dict[str, str] = {}

    async def post(self, text: str, *, ephemeral: bool = False) -> str:
        self.adapter.screen.message(text)
        self.adapter.remember(text)
        mid = f"r{len(self._posted) + 1}"
        self._posted[mid] = text
        return mid

    async def edit(self, message_id: str, text: str) -> None:
        before = self._posted.get(message_id, "")
        if text.startswith(before):
            if text != before:
                self.adapter.screen.continued(text[len(before):])
        else:
            self.adapter.screen.replaced(text)
        self._posted[message_id] = text

    async def open_stream(self, text: str = "") -> "ConsoleStream":
        stream = ConsoleStream(self.adapter)
        if text:
            await stream.append(text)
        return stream

    async def history(
        self, *, limit: int, since: datetime | None = None, scope: Literal["thread", "channel"] = "channel"
    ) -> list[HistoryItem]:
        items = [it for it in self.adapter.history if since is None or it.ts >= since]
        return items[-limit:]

    async def download(self, attachment: Attachment) -> bytes:
        """A local file named on the console (`/kb add PATH`)."""
        try:
            return await asyncio.to_thread(files.read, attachment)
        except OSError as exc:
            raise UserError(f"Cannot read {attachment.ref}: {exc.strerror or exc}.") from None


class ConsoleStream:
    """The terminal as an append-only stream: text is shown as it arrives."""

    def __init__(self, adapter: ConsoleAdapter) -> None:
        self.adapter = adapter
        self.message_id = "stream"
        self._parts: list[str] = []
        self._view = adapter.screen.stream()

    async def append(self, delta: str) -> None:
        self._parts.append(delta)
        self._view.append(delta)

    async def stop(self) -> None:
        self._view.close()
        if self._parts:
            self.adapter.remember("".join(self._parts))


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def _failed(error: BaseException | None) -> bool:
    """An answer the model (or the bot) failed to give; not the user's own mistake."""
    return error is not None and not (isinstance(error, UserError) and not isinstance(error, LLMError))


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "you"
