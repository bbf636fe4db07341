"""A conversation whose replies go out as Server-Sent Events: what the HTTP API's
streamed chat hands to the router, so an API request takes the same path as a DM
(routing, cache, ledger, budgets, errors) and its answer streams like one.

Events (each `data:` is JSON):

- `delta`   {"text": "..."}   more text of the streamed answer (a native stream);
- `message` {"id", "text"}    a whole reply posted at once (a command's answer, a
  refusal, an apology);
- `edit`    {"id", "text"}    a posted reply replaced;
- `done`    {"text", "error"} the end: the whole answer, and the user-facing error
  message if it failed (null otherwise).
"""
from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from aiohttp import web

from bot.core.messages import Attachment, HistoryItem
from bot.core.surface import Limits

log = logging.getLogger(__name__)


class SseConversation:
    """`Conversation` + native stream over one `web.StreamResponse`."""

    def __init__(self, response: web.StreamResponse, *, history: list[HistoryItem] | None = None,
                 on_gone: Callable[[], object] = lambda: None) -> None:
        self.response = response
        self.on_gone = on_gone  # called once when the client has gone away (stop the work for it)
        self.gone = False
        self.limits = Limits(max_chars=1_000_000, update_interval=0.05, max_updates=100_000)
        self._history = history or []
        self._ids = itertools.count(1)
        self.texts: dict[str, str] = {}
        self.streamed = ""

    async def send(self, event: str, data: dict) -> None:
        if self.gone:
            raise ConnectionResetError("the client has gone away")
        payload = json.dumps(data, ensure_ascii=False)
        try:
            await self.response.write(f"event: {event}\ndata: {payload}\n\n".encode())
        except (ConnectionError, RuntimeError):  # RuntimeError: aiohttp's "cannot write to closing transport"
            self.gone = True
            log.info("the API client went away; stopping its answer")
            self.on_gone()
            raise

    # --- Conversation ---------------------------------------------------------------

    async def post(self, text: str, *, ephemeral: bool = False) -> str:
        mid = f"m{next(self._ids)}"
        self.texts[mid] = text
        await self.send("message", {"id": mid, "text": text})
        return mid

    async def edit(self, message_id: str, text: str) -> None:
        self.texts[message_id] = text
        await self.send("edit", {"id": message_id, "text": text})

    async def history(self, *, limit: int, since: datetime | None = None,
                      scope: Literal["thread", "channel"] = "channel") -> list[HistoryItem]:
        items = [h for h in self._history if since is None or h.ts >= since]
        return items[-limit:]

    async def download(self, attachment: Attachment) -> bytes:
        raise FileNotFoundError(attachment.name)  # the API sends no files with a chat message

    # --- native stream --------------------------------------------------------------

    async def open_stream(self, text: str = "") -> "_Stream":
        mid = f"m{next(self._ids)}"
        self.texts[mid] = ""
        stream = _Stream(self, mid)
        if text:
            await stream.append(text)
        return stream

    @property
    def answer(self) -> str:
        """Every reply's text, in order."""
        return "\n\n".join(t for t in self.texts.values() if t)


class _Stream:
    def __init__(self, conv: SseConversation, mid: str) -> None:
        self.conv = conv
        self.message_id = mid

    async def append(self, delta: str) -> None:
        self.conv.texts[self.message_id] += delta
        await self.conv.send("delta", {"id": self.message_id, "text": delta})

    async def stop(self) -> None:
        pass
