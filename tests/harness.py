"""In-process test harness: a recording conversation and `await bot.send(...)`.

    replies = await bot.send("@aibot what is our refund policy?")
    assert "refund" in replies[-1]

`RecordingConversation` keeps every platform write in order (posts, edits, stream
appends) so tests can assert on what a user would have seen, and it fails loudly if two
writes to one message ever overlap.
"""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from bot.core.errors import UserError
from bot.core.messages import Attachment, HistoryItem, Incoming, utcnow
from bot.core.surface import Limits


@dataclass
class Message:
    id: str
    text: str
    ephemeral: bool = False
    versions: list[str] = field(default_factory=list)  # every text it showed, in order


class RecordingConversation:
    """A fake platform surface that records what users would see."""

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        history: list[HistoryItem] | None = None,
        files: dict[str, bytes] | None = None,
        write_delay: float = 0.0,
        fail_edits: int = 0,
    ) -> None:
        self.limits = limits or Limits(max_chars=4_000, update_interval=0.0, max_updates=1_000)
        self.items: list[HistoryItem] = list(history or [])
        self.files = files or {}
        self.messages: list[Message] = []
        self.calls: list[tuple[str, str]] = []  # (kind, message id)
        self.write_delay = write_delay
        self.fail_edits = fail_edits
        self._busy: set[str] = set()
        self.overlaps = 0

    async def _write(self, mid: str) -> None:
        if mid in self._busy:
            self.overlaps += 1
            raise AssertionError(f"overlapping writes to message {mid}")
        self._busy.add(mid)
        try:
            if self.write_delay:
                await asyncio.sleep(self.write_delay)
        finally:
            self._busy.discard(mid)

    async def post(self, text: str, *, ephemeral: bool = False) -> str:
        mid = f"m{len(self.messages) + 1}"
        await self._write(mid)
        self.messages.append(Message(mid, text, ephemeral, [text]))
        self.calls.append(("post", mid))
        return mid

    async def edit(self, message_id: str, text: str) -> None:
        self.calls.append(("edit", message_id))
        if self.fail_edits > 0:
            self.fail_edits -= 1
            raise RuntimeError("platform refused the edit")
        await self._write(message_id)
        msg = self._get(message_id)
        msg.text = text
        msg.versions.append(text)

    async def history(
        self, *, limit: int, since: datetime | None = None, scope: Literal["thread", "channel"] = "channel"
    ) -> list[HistoryItem]:
        items = [it for it in self.items if since is None or it.ts >= since]
        return items[-limit:]

    async def download(self, attachment: Attachment) -> bytes:
        if attachment.ref not in self.files:
            raise UserError(f"{attachment.name} could not be downloaded.")
        return self.files[attachment.ref]

    def _get(self, mid: str) -> Message:
        return next(m for m in self.messages if m.id == mid)

    @property
    def texts(self) -> list[str]:
        return [m.text for m in self.messages]


class RecordingStream:
    def __init__(self, conv: "StreamingConversation", mid: str) -> None:
        self.conv = conv
        self.message_id = mid
        self.stopped = False

    async def append(self, delta: str) -> None:
        assert not self.stopped, "append after stop"
        await self.conv._write(self.message_id)
        msg = self.conv._get(self.message_id)
        msg.text += delta
        msg.versions.append(msg.text)
        self.conv.calls.append(("append", self.message_id))

    async def stop(self) -> None:
        self.stopped = True
        self.conv.calls.append(("stop", self.message_id))


class StreamingConversation(RecordingConversation):
    """A surface with a native append-only stream (like Slack's chat streaming)."""

    async def open_stream(self, text: str = "") -> RecordingStream:
        mid = f"m{len(self.messages) + 1}"
        self.messages.append(Message(mid, text, False, [text] if text else []))
        self.calls.append(("start", mid))
        return RecordingStream(self, mid)


_MENTION = re.compile(r"@aibot\b[,:]?", re.IGNORECASE)
_COMMAND = re.compile(r"^/([A-Za-z][\w-]*)(?:\s+(.*))?$", re.DOTALL)


class Harness:
    """Talk to the composed bot like a user in one channel."""

    def __init__(self, app, *, conv_factory=RecordingConversation) -> None:
        self.app = app
        self.conv_factory = conv_factory
        self.history: list[HistoryItem] = []
        self.last: RecordingConversation | None = None
        self._n = 0

    def incoming(self, text: str, **overrides) -> Incoming:
        self._n += 1
        # the user administers the workspace unless a test says otherwise (`is_admin=False`)
        fields: dict = dict(platform="test", tenant="T1", channel="C1", user="U1", user_name="alice", id=f"u{self._n}",
                            is_admin=True)
        m = _COMMAND.match(text.strip())
        if m:
            fields.update(command=m.group(1).lower(), text=(m.group(2) or "").strip())
        else:
            stripped, n = _MENTION.subn(" ", text)
            fields.update(text=" ".join(stripped.split()) if n else text, mentioned=bool(n))
        fields.update(overrides)
        return Incoming(**fields)

    async def send(self, text: str, *, conv: RecordingConversation | None = None, **overrides) -> list[str]:
        """Deliver one message and return the texts the bot left in the channel."""
        msg = self.incoming(text, **overrides)
        if msg.command is None:
            self.history.append(HistoryItem(user=msg.user_name or msg.user, text=text, ts=utcnow(), id=msg.id))
        conv = conv or self.conv_factory(history=list(self.history))
        self.last = conv
        await self.app.router.dispatch(msg, conv)
        for m in conv.messages:
            self.history.append(HistoryItem(user="aibot", text=m.text, ts=utcnow(), is_bot=True, id=m.id))
        return conv.texts
