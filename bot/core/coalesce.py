"""One request for many callers: items submitted while a request is on its way wait and
go together in the next one (no timer: a lone item goes at once). Under load, when
requests take longer, batches grow by themselves; idle, nothing waits. Work behind the
user (a write nobody waits for) may take a `delay` to gather more."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from bot.core.priority import shared_task

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    def __init__(self, run: Callable[[list[T]], Awaitable[list[R]]], *, max_batch: int, delay: float = 0.0) -> None:
        self.run = run  # items -> one result per item, in order
        self.max_batch = max_batch
        self.delay = delay  # seconds a batch waits for more items (0: it goes at once)
        self.requests = 0  # batches sent (for tests and metrics)
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task | None = None

    async def submit(self, item: T) -> R:
        answer: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, answer))
        if self._task is None or self._task.done():
            self._task = shared_task(self._drain())  # serves every caller: never bulk because its first one was
        return await asyncio.shield(answer)  # a cancelled caller must not cancel the others' request

    async def _drain(self) -> None:
        while self._waiting:
            if self.delay:
                await asyncio.sleep(self.delay)
            batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch:]
            self.requests += 1
            try:
                results = await self.run([item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"{len(results)} results for {len(batch)} items")
            except Exception as exc:
                for _, answer in batch:
                    if not answer.done():
                        answer.set_exception(exc)
                        answer.exception()  # retrieved here: a caller that gave up is not an unhandled error
                continue
            for (_, answer), result in zip(batch, results):
                if not answer.done():
                    answer.set_result(result)
