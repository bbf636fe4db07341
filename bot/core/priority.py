"""Interactive work before bulk work on every shared resource.

Bulk work is what nobody is waiting on word by word: adding documents to a knowledge
base, scheduled digests, bulk-job items. It runs inside `bulk()` (a context variable, so
everything it calls and every task it starts is bulk too) and the shared resources
read `is_bulk()` to put it behind interactive work (questions, chat, commands):

- the database pool (`bot.core.db.Sessions`): bulk holds at most a share of it;
- the in-flight slots (`bot.core.load.Load`): bulk has slots of its own;
- the platform write budgets (Slack's per-workspace tiers, Discord's per-channel edits):
  bulk writes leave headroom for interactive ones;
- the embedding model gate (`bot.core.embeddings`): a question goes before a waiting
  ingestion slice.

A task that works for every message (a writer batching the usage rows, duplicate checks
or journal changes of whatever comes) is started with `shared_task`: never bulk, even
when a bulk message happened to start it, or the questions' rows would queue behind
bulk work's share.
"""
from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_bulk: ContextVar[bool] = ContextVar("aibot_bulk", default=False)


def is_bulk() -> bool:
    """True inside `bulk()` (in this task or the task that started it)."""
    return _bulk.get()


@contextmanager
def bulk(on: bool = True) -> Iterator[None]:
    """Mark the work done inside (and the tasks it starts) as bulk (or, with `on=False`, not)."""
    token = _bulk.set(on)
    try:
        yield
    finally:
        _bulk.reset(token)


def shared_task(coro: Coroutine, *, name: str | None = None) -> asyncio.Task:
    """Start `coro` as a task that is never bulk, whichever work starts it (a writer
    shared by every message)."""
    with bulk(False):
        return asyncio.create_task(coro, name=name)
