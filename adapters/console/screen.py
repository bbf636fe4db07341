"""How the console shows the bot's replies: Markdown rendered by rich on a terminal,
plain text (`aibot: ...` lines) when stdout is a pipe or a file, so scripts read
exactly what the model wrote.

A screen writes whole replies (`message`), later changes to one (`continued` when text
was added, `replaced` otherwise), notices of its own, and streamed answers
(`stream()`: shown as they arrive, on a terminal re-rendered as Markdown in place).
"""
from __future__ import annotations

import re
from typing import IO, Protocol

_FENCE = re.compile(r"^\s*(```|~~~)")


class StreamView(Protocol):
    def append(self, delta: str) -> None: ...

    def close(self) -> None: ...


class Screen(Protocol):
    def notice(self, text: str) -> None: ...

    def message(self, text: str) -> None: ...

    def continued(self, added: str) -> None: ...

    def replaced(self, text: str) -> None: ...

    def stream(self) -> StreamView: ...


class PlainScreen:
    """One `name: text` line per reply; a streamed answer is printed as it arrives."""

    def __init__(self, output: IO[str], *, name: str) -> None:
        self._out = output
        self.name = name

    def write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    def notice(self, text: str) -> None:
        self.write(text + "\n")

    def message(self, text: str) -> None:
        self.write(f"{self.name}: {text}\n")

    def continued(self, added: str) -> None:
        self.write(f"{self.name}: …{added}\n")

    def replaced(self, text: str) -> None:
        self.write(f"{self.name} (edited): {text}\n")

    def stream(self) -> "PlainStream":
        return PlainStream(self)


class PlainStream:
    def __init__(self, screen: PlainScreen) -> None:
        self._screen = screen
        self._started = False

    def append(self, delta: str) -> None:
        if not self._started:
            self._screen.write(f"{self._screen.name}: ")
            self._started = True
        self._screen.write(delta)

    def close(self) -> None:
        if self._started:
            self._screen.write("\n")


class RichScreen:
    """Replies as Markdown (headings, lists, code blocks with colour, links) under the
    bot's name, on a terminal."""

    def __init__(self, output: IO[str], *, name: str) -> None:
        from rich.console import Console
        from rich.text import Text

        self.console = Console(file=output, highlight=False, soft_wrap=False)
        self._label = Text(name, style="bold cyan")

    def _markdown(self, text: str):
        from rich.markdown import Markdown

        return Markdown(hard_breaks(text), hyperlinks=True)

    def notice(self, text: str) -> None:
        self.console.print(text, style="dim", markup=False)

    def message(self, text: str) -> None:
        self.console.print(self._label)
        self.console.print(self._markdown(text))
        self.console.print()

    def continued(self, added: str) -> None:
        self.console.print(self._markdown(added))
        self.console.print()

    def replaced(self, text: str) -> None:
        self.console.print(self._label.copy().append(" (edited)", style="dim"))
        self.console.print(self._markdown(text))
        self.console.print()

    def stream(self) -> "RichStream":
        return RichStream(self)


class RichStream:
    """A streamed answer re-rendered in place as it grows. While it is taller than the
    terminal only its last lines are shown (the newest text stays in view); when it ends
    the whole answer is printed once, into the scrollback."""

    def __init__(self, screen: RichScreen) -> None:
        self._screen = screen
        self._parts: list[str] = []
        self._live = None

    def append(self, delta: str) -> None:
        from rich.live import Live

        self._parts.append(delta)
        view = _Tail(self._screen._markdown("".join(self._parts)))
        if self._live is None:
            self._screen.console.print(self._screen._label)
            self._live = Live(view, console=self._screen.console, refresh_per_second=12, auto_refresh=True)
            self._live.start()
        else:
            self._live.update(view)

    def close(self) -> None:
        if self._live is not None:
            self._live.update(self._screen._markdown("".join(self._parts)))
            self._live.stop()  # the final render shows everything
            self._live = None
            self._screen.console.print()


class _Tail:
    """A renderable's last lines, as many as fit on the terminal."""

    def __init__(self, renderable) -> None:
        self.renderable = renderable

    def __rich_console__(self, console, options):
        from rich.segment import Segment

        lines = console.render_lines(self.renderable, options, pad=False)
        room = max(1, console.size.height - 3)
        for line in lines[-room:]:
            yield from line
            yield Segment.line()


def hard_breaks(text: str) -> str:
    """Chat Markdown keeps a single newline as a line break (Slack, Discord, the bot's own
    `/help` list); CommonMark joins such lines, so outside code blocks each gets the
    hard break CommonMark spells as two trailing spaces."""
    out, in_code = [], False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_code = not in_code
        elif not in_code and line.strip():
            line = line.rstrip() + "  "
        out.append(line)
    return "\n".join(out)
