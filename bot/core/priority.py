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
"""
from __future__ import annotations

from collections.abc import Iterator
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
