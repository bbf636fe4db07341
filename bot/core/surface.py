"""What an adapter must provide to the core, as small Protocols.

`Conversation` is handed to the router with each `Incoming`: it is where replies go and
what history and files the patterns may read. Streaming natively (`open_stream`) and a
thinking status (`set_status`) are optional capabilities; the renderer falls back to
post + throttled edits when an adapter has no native stream.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from bot.core.answers import Press
from bot.core.commands import CommandSet
from bot.core.messages import Attachment, HistoryItem, Incoming


@dataclass
class Limits:
    """How a platform wants to be written to. `update_interval` is read before every
    progressive update, so an adapter may make it a property that adapts to load."""

    max_chars: int = 4_000  # one message; longer answers continue in a new message
    update_interval: float = 1.0  # seconds between progressive updates of one message
    max_updates: int = 60  # intermediate updates per message; the final one always goes


class StreamUnsupported(Exception):
    """Raised by `open_stream` when this workspace/channel cannot stream natively; the
    renderer then falls back to post + edits for the rest of the answer."""


class MessageGone(Exception):
    """Raised by `edit` (or a native stream's writes) when the message no longer exists,
    e.g. a user deleted it: the renderer stops writing that answer, quietly."""


class WholeAnswerOnly(Exception):
    """Raised by `post` when the reply location turned out to be one where a message
    cannot be edited (Slack: the bot is not in the channel, so the answer goes through
    the command's response_url). Nothing was posted; post the whole answer once, at the
    end, and the conversation delivers it there with a word on why."""


async def post_whole(conv: "Conversation", text: str, *, ephemeral: bool = False) -> str:
    """`conv.post` for a complete reply: a WholeAnswerOnly switch is followed at once."""
    try:
        return await conv.post(text, ephemeral=ephemeral)
    except WholeAnswerOnly:
        return await conv.post(text, ephemeral=ephemeral)


class NativeStream(Protocol):
    """An append-only message stream the platform renders progressively. A stream may
    also offer `async def finish(self, delta: str)`: append the last text and stop in one
    platform call (the renderer uses it for the final update when present)."""

    async def append(self, delta: str) -> None: ...

    async def stop(self) -> None: ...


@runtime_checkable
class Conversation(Protocol):
    """Replies, history and files for one incoming message."""

    limits: Limits

    async def post(self, text: str, *, ephemeral: bool = False) -> str:
        """Post a message in the reply location; return its opaque id."""
        ...

    async def edit(self, message_id: str, text: str) -> None:
        """Replace the text of a message this conversation posted."""
        ...

    async def history(
        self,
        *,
        limit: int,
        since: datetime | None = None,
        scope: Literal["thread", "channel"] = "channel",
    ) -> list[HistoryItem]:
        """Recent messages, oldest first, at most `limit`, not older than `since`."""
        ...

    async def download(self, attachment: Attachment) -> bytes:
        """The bytes of an attachment of the incoming message."""
        ...


class StreamingConversation(Conversation, Protocol):
    async def open_stream(self, text: str = "") -> NativeStream:
        """A new streamed message showing `text` (Markdown) from the start, in the same
        platform call where the platform allows it."""
        ...


class StatusConversation(Conversation, Protocol):
    async def set_status(self, text: str | None) -> None:
        """Show (or clear, with None) a "thinking" indicator."""
        ...


Dispatch = Callable[[Incoming | Press, Conversation], Awaitable[None]]  # a message, or a press of an answer's control


class Adapter(Protocol):
    """A platform connection. `start` returns once connected; events then go to
    `dispatch` (which must not be awaited inline for slow work: acknowledge first).
    `commands` are the bot's declared commands, for a platform that registers them
    (Discord's command tree)."""

    name: str

    async def start(self, dispatch: Dispatch, *, commands: CommandSet = ...) -> None: ...

    async def wait_closed(self) -> None:
        """Return when the adapter has nothing more to deliver (console: EOF)."""
        ...

    async def stop(self) -> None: ...

    def conversation(self, *, tenant: str, channel: str, thread: str | None = None) -> Conversation:
        """A conversation in one of this platform's channels, for posts nobody asked for
        in that moment (scheduled digests, finished jobs)."""
        ...


class Resumable(Protocol):
    """An adapter that can pick up an answer a stopped process left cut off (the answer
    journal, `bot.core.recovery`). Optional: a platform without it is not journaled."""

    async def resume(self, msg: Incoming) -> Conversation:
        """A conversation to answer `msg` again in, as the original one would have."""
        ...

    async def close_cut(self, msg: Incoming, message_id: str, *, native: bool, note: str) -> None:
        """End the message `message_id` written for `msg` with `note` under its text (a
        native stream is stopped), so that it no longer looks finished or in progress;
        its controls go."""
        ...
