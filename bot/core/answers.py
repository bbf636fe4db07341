"""Answers and their controls: Stop, Regenerate, 👍/👎 (with an optional reason).

The core owns what a control does; an adapter owns how it looks (Block Kit buttons,
Discord components). A conversation that can show controls has a `controls` attribute
(`ControlsConversation`): the renderer sets it to `Controls(answer, running=True)` while
an answer streams and to `running=False` for the final write, and the adapter draws the
matching widgets on the answer's message. A press comes back through the same `dispatch`
as messages, normalized into a `Press`.

Each answer has an id. Every model call made while it is produced carries that id in its
usage-ledger row (`extra.answer`, via the `CURRENT` context variable), so feedback finds
the row it is about; `FRESH` makes those calls skip caches (Regenerate).

`Answers` knows the answers of this process; with a `store` (`bot.core.answer_store`)
every answer is also remembered in the database once its first message is shown, so that
Stop and Regenerate work from whichever process a press reaches.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from bot.core.messages import Incoming

log = logging.getLogger(__name__)

CURRENT: ContextVar[str | None] = ContextVar("aibot_answer", default=None)  # the answer being produced
FRESH: ContextVar[bool] = ContextVar("aibot_fresh", default=False)  # skip every cache (Regenerate)

STOP, REGENERATE, GOOD, BAD, REASON = "stop", "regenerate", "good", "bad", "reason"
ACTIONS = (STOP, REGENERATE, GOOD, BAD, REASON)
KEEP = 2_000  # finished answers remembered for Regenerate (per process)


@dataclass(frozen=True)
class Controls:
    """The controls an adapter shows under an answer: Stop while it runs, then
    Regenerate and 👍/👎."""

    answer: str
    running: bool


@runtime_checkable
class ControlsConversation(Protocol):
    """A conversation that can draw controls on the answer message it writes."""

    controls: Controls | None


@dataclass(frozen=True)
class Press:
    """Someone used a control of an answer (normalized by the adapter)."""

    action: str  # one of ACTIONS
    answer: str
    platform: str
    tenant: str
    channel: str
    user: str
    reason: str | None = None  # REASON: the text they typed (optional)
    raw: Any = None
    message: str | None = None  # set (and `answer` empty) when the press names the answer's message
    # instead: a 🛑 reaction on it
    quiet: bool = False  # tell the presser nothing (a reaction is not a button: any refusal stays silent)


class Answer:
    """One streamed answer: who asked where (for Regenerate) and how to stop it."""

    def __init__(self, msg: Incoming, conv: Any) -> None:
        self.id = uuid.uuid4().hex[:16]
        self.msg = msg
        self.conv = conv
        self.running = True
        self.stopped = False
        self.message: str | None = None  # the id of its first message, once shown
        self.on_shown = None  # called with the answer when its first message is shown
        self._task: asyncio.Task | None = None

    def shown(self, message_id: str) -> None:
        """The renderer wrote the answer's first message (its id, for reactions)."""
        if self.message is None:
            self.message = message_id or ""
            if self.on_shown is not None:
                self.on_shown(self)

    def attach(self, task: asyncio.Task) -> None:
        """The task reading the model's stream: Stop cancels it."""
        self._task = task
        if self.stopped:
            task.cancel()

    def stop(self) -> bool:
        """Cancel the model call; False if the answer had already finished."""
        if not self.running:
            return False
        self.stopped = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
        return True


class Answers:
    """Answers in flight, and the last KEEP finished ones, in this process; with a
    `store`, also in the database for the other processes (written in the background:
    an answer never waits for it)."""

    def __init__(self, *, keep: int = KEEP, store: Any = None) -> None:
        self.keep = keep
        self.store = store  # bot.core.answer_store.AnswerStore, or None: this process only
        self._known: OrderedDict[str, Answer] = OrderedDict()
        self._writes: dict[str, asyncio.Task] = {}  # answer id -> its row's write
        self._pending: set[asyncio.Task] = set()
        self._listener = None

    def begin(self, msg: Incoming, conv: Any) -> Answer:
        answer = Answer(msg, conv)
        self._known[answer.id] = answer
        if self.store is not None:
            answer.on_shown = self._remember
            if self._listener is None:  # Stop pressed in another process reaches this one
                self._listener = self.store.listener(stop=self.stop_here, running=self.running_ids)
            self._listener.start()
        while len(self._known) > self.keep:
            oldest = next(iter(self._known))
            if self._known[oldest].running:  # never forget one that can still be stopped
                self._known.move_to_end(oldest)
                break
            self._known.popitem(last=False)
        return answer

    def finish(self, answer: Answer) -> None:
        answer.running = False
        written = self._writes.pop(answer.id, None)
        if written is not None:
            self._background(self._finished(answer.id, written))

    def get(self, answer_id: str) -> Answer | None:
        return self._known.get(answer_id)

    def on_message(self, platform: str, message_id: str) -> Answer | None:
        """The answer of this process whose first message is `message_id`."""
        return next((a for a in reversed(self._known.values())
                     if a.message == message_id and a.msg.platform == platform), None)

    def running_ids(self) -> list[str]:
        return [a.id for a in self._known.values() if a.running]

    def stop_here(self, answer_id: str) -> bool:
        """Stop the answer if this process is writing it (a NOTIFY from another one)."""
        answer = self._known.get(answer_id)
        return answer is not None and answer.stop()

    def _remember(self, answer: Answer) -> None:
        self._writes[answer.id] = self._background(self._write(answer))

    async def _write(self, answer: Answer) -> None:
        try:
            await self.store.remember(answer, answer.message)
        except Exception:  # controls still work in this process
            log.warning("could not remember answer %s for the other processes", answer.id, exc_info=True)

    async def _finished(self, answer_id: str, written: asyncio.Task) -> None:
        await written
        try:
            await self.store.finished(answer_id)
        except Exception:
            log.warning("could not mark answer %s finished", answer_id, exc_info=True)

    def _background(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    async def settle(self) -> None:
        """Wait for the database writes started so far."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def close(self) -> None:
        await self.settle()
        if self._listener is not None:
            await self._listener.close()
            self._listener = None

    @contextmanager
    def producing(self, answer: Answer | None) -> Iterator[None]:
        """Model calls made inside carry `answer`'s id in their ledger rows."""
        token = CURRENT.set(answer.id if answer else None)
        try:
            yield
        finally:
            CURRENT.reset(token)


@contextmanager
def fresh() -> Iterator[None]:
    """Model calls made (or tasks started) inside skip the answer caches."""
    token = FRESH.set(True)
    try:
        yield
    finally:
        FRESH.reset(token)
