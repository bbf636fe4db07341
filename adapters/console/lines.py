"""Where the console's lines come from: a prompt with line editing and history when a
person sits at a terminal, plain line reading otherwise (a pipe or a file, so
`echo "..." | aibot run` works and ends at EOF).

Both give raw bytes per line (the adapter decodes them and says so when it can't), an
`Oversized` for a line too long to hold, or `EOF`.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import IO, Protocol

log = logging.getLogger(__name__)

EOF = object()


class Oversized:
    """A line longer than the limit, dropped while reading; only its size is kept."""

    def __init__(self, size: int) -> None:
        self.size = size


class Lines(Protocol):
    def start(self) -> None: ...

    async def next(self) -> bytes | Oversized | object:
        """The next line, an `Oversized`, or `EOF`."""
        ...


class PipedLines:
    """Blocking reads in a daemon thread, queued: works for a TTY, a pipe or a file."""

    def __init__(self, input: IO[bytes], *, max_line_bytes: int) -> None:
        self._input = input
        self._max_line = max_line_bytes
        self._queue: asyncio.Queue = asyncio.Queue()

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._read, args=(loop,), name="console-stdin", daemon=True).start()

    async def next(self) -> bytes | Oversized | object:
        return await self._queue.get()

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
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
                    put(Oversized(size))
                    continue
                put(line)
        except Exception:
            log.exception("reading stdin failed")
        finally:
            try:
                put(EOF)
            except RuntimeError:  # the loop is already closed
                pass


class PromptLines:
    """prompt_toolkit's prompt: arrow keys, Emacs editing keys, history kept in a file
    across sessions (Up / Ctrl-R), Ctrl-D on an empty line to quit.

    Ctrl-C at the prompt raises KeyboardInterrupt out of `next()`; the adapter decides
    what it means."""

    def __init__(self, *, prompt: str, history_file: Path | None, max_line_bytes: int) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory

        history = InMemoryHistory()
        if history_file is not None:
            try:
                history_file.parent.mkdir(parents=True, exist_ok=True)
                history_file.touch(exist_ok=True)
                history = FileHistory(str(history_file))
            except OSError as exc:  # a read-only home still gets a working prompt
                log.warning("console history not kept: cannot write %s (%s)", history_file, exc.strerror)
        self._session = PromptSession(history=history)
        self._prompt = prompt
        self._max_line = max_line_bytes

    def start(self) -> None:
        pass

    async def next(self) -> bytes | Oversized | object:
        try:
            text = await self._session.prompt_async(self._prompt)
        except EOFError:  # Ctrl-D
            return EOF
        data = text.encode("utf-8", "surrogateescape")
        if len(data) > self._max_line:
            return Oversized(len(data))
        return data
