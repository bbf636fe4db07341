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


class Answer:
    """One streamed answer: who asked where (for Regenerate) and how to stop it."""

    def __init__(self, msg: Incoming, conv: Any) -> None:
        self.id = uuid.uuid4().hex[:16]
        self.msg = msg
        self.conv = conv
        self.running = True
        self.stopped = False
        self._task: asyncio.Task | None = None

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
    """Answers in flight, and the last KEEP finished ones, in this process."""

    def __init__(self, *, keep: int = KEEP) -> None:
        self.keep = keep
        self._known: OrderedDict[str, Answer] = OrderedDict()

    def begin(self, msg: Incoming, conv: Any) -> Answer:
        answer = Answer(msg, conv)
        self._known[answer.id] = answer
        while len(self._known) > self.keep:
            oldest = next(iter(self._known))
            if self._known[oldest].running:  # never forget one that can still be stopped
                self._known.move_to_end(oldest)
                break
            self._known.popitem(last=False)
        return answer

    def finish(self, answer: Answer) -> None:
        answer.running = False

    def get(self, answer_id: str) -> Answer | None:
        return self._known.get(answer_id)

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
