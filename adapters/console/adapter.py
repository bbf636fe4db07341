"""Console adapter: the terminal (or a pipe) as one channel.

Each input line is a message. `/name args` is a slash command; a line mentioning the bot
(`@aibot ...`) is addressed to it; any other line is ordinary channel chatter, kept as
history (so `/summarize` alone summarizes the conversation so far). Answers stream to
stdout through the core's renderer (the terminal is an append-only native stream).
Lines are handled one after another, and at EOF the adapter finishes its replies and
closes, so `printf '@aibot hi\\n' | aibot run` prints the answer and exits 0.
"""
from __future__ import annotations

import asyncio
import getpass
import io
import logging
import os
import re
import sys
import threading
from collections import deque
from datetime import datetime
from typing import IO, Literal

from bot.core.commands import CommandSet
from bot.core.errors import UserError
from bot.core.messages import Attachment, HistoryItem, Incoming, utcnow
from bot.core.surface import Dispatch, Limits

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 8 * 1024 * 1024  # beyond this a line is refused without being held in memory
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
    ) -> None:
        self.bot_name = bot_name
        # not sys.stdin's own buffer: a reader thread blocked in it holds its lock, and the
        # interpreter aborts at exit ("Fatal Python error") when it cannot flush stdin
        self._input = input if input is not None else _private_stdin()
        self._output = output if output is not None else sys.stdout
        self.user = user or _login()
        self.history: deque[HistoryItem] = deque(maxlen=history_size)
        self._max_line = max_line_bytes
        self._mention = re.compile(rf"(?<![\w@])@{re.escape(bot_name)}\b[,:]?", re.IGNORECASE)
        self._queue: asyncio.Queue = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self._seq = 0
        self.tty = bool(getattr(self._input, "isatty", lambda: False)())

    # --- lifecycle ------------------------------------------------------------------

    async def start(self, dispatch: Dispatch, *, commands: CommandSet = CommandSet()) -> None:
        """Read lines; the router reads `/command` lines by the declarations itself."""
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._read_lines, args=(loop,), name="console-stdin", daemon=True).start()
        if self.tty:
            self.write(
                f"{self.bot_name} console: mention @{self.bot_name} to ask, /help for commands, Ctrl-D to quit.\n"
            )
        self._task = asyncio.create_task(self._serve(dispatch))

    async def wait_closed(self) -> None:
        if self._task is not None:
            await self._task

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def _read_lines(self, loop: asyncio.AbstractEventLoop) -> None:
        """Blocking reads in a daemon thread (works for a TTY, a pipe or a file)."""
        put = lambda item: loop.call_soon_threadsafe(self._queue.put_nowait, item)  # noqa: E731
        try:
            while True:
                line = self._input.readline(self._max_line + 1)
                if not line:
                    break
                if len(line) > self._max_line and not line.endswith(b"\n"):
                    size = len(line)
                    while line and not line.endswith(b"\n"):  # drop the rest of the line
                        line = self._input.readline(1 << 20)
                        size += len(line)
                    put(_Oversized(size))
                    continue
                put(line)
        except Exception:
            log.exception("reading stdin failed")
        finally:
            try:
                put(_EOF)
            except RuntimeError:  # the loop is already closed
                pass

    async def _serve(self, dispatch: Dispatch) -> None:
        while True:
            item = await self._queue.get()
            if item is _EOF:
                return
            conv = ConsoleConversation(self)
            if isinstance(item, _Oversized):
                await conv.post(
                    f"That message is too long for me ({item.size:,} bytes); I ignored it. "
                    "Send long texts with `aibot summarize FILE` instead."
                )
                continue
            try:
                text = item.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                await conv.post("That line isn't valid UTF-8 text, so I ignored it.")
                continue
            msg = self.parse(text)
            if msg is None:
                continue
            if msg.command is None:
                self.history.append(HistoryItem(user=self.user, text=text, ts=msg.ts, id=msg.id))
            await dispatch(msg, conv)

    # --- normalization --------------------------------------------------------------

    def parse(self, line: str) -> Incoming | None:
        """One input line as an `Incoming`, or None for a blank line."""
        if not line.strip():
            return None
        self._seq += 1
        common = dict(platform="console", tenant="console", channel="console", user=self.user, user_name=self.user,
                      id=f"c{self._seq}", ts=utcnow(), raw=line, is_admin=True)  # the operator
        m = _COMMAND.match(line.strip())
        if m:
            return Incoming(text=(m.group(2) or "").strip(), command=m.group(1).lower(), **common)
        stripped, n = self._mention.subn(" ", line)
        if n:
            return Incoming(text=" ".join(stripped.split()), mentioned=True, **common)
        return Incoming(text=line, **common)

    # --- output ---------------------------------------------------------------------

    def conversation(self, *, tenant: str = "console", channel: str = "console", thread: str | None = None) -> "ConsoleConversation":
        """The console is one channel: every conversation writes to it."""
        return ConsoleConversation(self)

    def write(self, text: str) -> None:
        self._output.write(text)
        self._output.flush()

    def remember(self, text: str) -> None:
        self.history.append(HistoryItem(user=self.bot_name, text=text, ts=utcnow(), is_bot=True))


class ConsoleConversation:
    """Replies for one console line."""

    limits = Limits(max_chars=1_000_000, update_interval=0.02, max_updates=100_000)

    def __init__(self, adapter: ConsoleAdapter) -> None:
        self.adapter = adapter
        self._posted: dict[str, str] = {}

    async def post(self, text: str, *, ephemeral: bool = False) -> str:
        self.adapter.write(f"{self.adapter.bot_name}: {text}\n")
        self.adapter.remember(text)
        mid = f"r{len(self._posted) + 1}"
        self._posted[mid] = text
        return mid

    async def edit(self, message_id: str, text: str) -> None:
        before = self._posted.get(message_id, "")
        if text.startswith(before):
            if text != before:
                self.adapter.write(f"{self.adapter.bot_name}: …{text[len(before):]}\n")
        else:
            self.adapter.write(f"{self.adapter.bot_name} (edited): {text}\n")
        self._posted[message_id] = text

    async def open_stream(self) -> "ConsoleStream":
        return ConsoleStream(self.adapter)

    async def history(
        self, *, limit: int, since: datetime | None = None, scope: Literal["thread", "channel"] = "channel"
    ) -> list[HistoryItem]:
        items = [it for it in self.adapter.history if since is None or it.ts >= since]
        return items[-limit:]

    async def download(self, attachment: Attachment) -> bytes:
        raise UserError("The console cannot receive files; use `aibot kb add PATH` instead.")


class ConsoleStream:
    """The terminal as an append-only stream: text is printed as it arrives."""

    def __init__(self, adapter: ConsoleAdapter) -> None:
        self.adapter = adapter
        self.message_id = "stream"
        self._parts: list[str] = []

    async def append(self, delta: str) -> None:
        if not self._parts:
            self.adapter.write(f"{self.adapter.bot_name}: ")
        self._parts.append(delta)
        self.adapter.write(delta)

    async def stop(self) -> None:
        if self._parts:
            self.adapter.write("\n")
            self.adapter.remember("".join(self._parts))


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "you"
