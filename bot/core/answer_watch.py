"""Times one message through the router for the metrics: in flight, waiting for its
conversation's turn, the first visible text of a streamed answer, the whole answer."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

from bot.core.metrics import METRICS

if TYPE_CHECKING:
    from bot.core.render import Rendered


class AnswerWatch:
    def __init__(self, platform: str, route: str) -> None:
        self.platform = platform
        self.route = route
        self.started = time.monotonic()
        self._handled = False

    @contextmanager
    def running(self) -> Iterator[None]:
        """In flight from here until the reply is delivered (or failed)."""
        self._handled = True
        gauge = METRICS.in_flight.labels(self.platform)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    @asynccontextmanager
    async def waiting(self, lock: asyncio.Lock) -> AsyncIterator[None]:
        """Hold `lock`; counted in the `router` queue while another answer in the same
        conversation has it."""
        if lock.locked():
            queue = METRICS.queue_depth.labels("router")
            queue.inc()
            try:
                await lock.acquire()
            finally:
                queue.dec()
        else:
            await lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def rendered(self, rendered: "Rendered | None") -> None:
        if rendered is not None and rendered.first_visible is not None:
            METRICS.first_visible_seconds.labels(self.platform).observe(max(0.0, rendered.first_visible - self.started))

    def done(self, outcome: str) -> None:
        """`ok`, `cut` (streamed, failed midway), `refused` (a clear message to the user) or
        `failed`; only messages that reached a handler are counted."""
        if not self._handled:
            return
        METRICS.answers.labels(self.platform, self.route, outcome).inc()
        METRICS.answer_seconds.labels(self.platform, self.route).observe(time.monotonic() - self.started)
