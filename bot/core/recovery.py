"""Recovery of answers a dead process left in flight (the answer journal's other half).

On start and then about every lease/2 (sooner when a lease is about to run out), each
process claims the open journal rows of the platforms it serves whose owner stopped
renewing its lease (`Journal.claim`: one claimer per row, across replicas). For each:

- a message answered in chat (the `answer` route), received less than
  AIBOT_JOURNAL_REDO_WITHIN seconds ago and not already taken over once, is answered
  again: the half-written message (or native Slack stream) is closed with a note saying
  the complete answer follows, and the message is dispatched again (the model is called
  again; free, from the cache, when the first call had finished);
- anything else (a command, an upload, a second crash on the same message, an old one)
  is closed: the open message gets a note that it was cut short and an offer to ask
  again, or, when nothing was shown yet, the asker is told so.

The platform's half is the adapter's (`bot.core.surface.Resumable`).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from urllib.parse import unquote

from bot.core.journal import CLOSED, Claimed, Journal
from bot.core.spool import HeldSpool
from bot.core.surface import post_whole

log = logging.getLogger(__name__)

CONTINUES = "⚠️ _This answer was cut off when the bot restarted; the complete answer follows._"
CUT = "⚠️ _Answer cut short: the bot restarted before it finished. Please ask again._"
LOST = "I restarted before I could answer your last message here. Please ask again."
PURGE_EVERY = 3_600.0


class Recovery:
    def __init__(self, *, journal: Journal, submit: Callable, redo_within: float = 600.0) -> None:
        self.journal = journal
        self.submit = submit  # (msg, conv) -> handled again in the background, without dedupe
        self.redo_within = redo_within
        self.adapters: dict[str, object] = {}
        self._task: asyncio.Task | None = None
        self._purged = 0.0

    def serve(self, adapter) -> None:
        """Journal the answers of `adapter`'s platform, if it can resume them (before it
        starts: its first event may arrive before `start` returns)."""
        if not (callable(getattr(adapter, "resume", None)) and callable(getattr(adapter, "close_cut", None))):
            return
        self.adapters[adapter.name] = adapter
        self.journal.platforms.add(adapter.name)

    def start(self) -> None:
        """Renew this process's leases and recover its platforms' cut-off answers from now
        on (once the adapters are connected)."""
        if not self.adapters:
            return
        self.journal.start()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="answer-recovery")

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
                wait = await self._next_wait()
            except Exception as exc:  # the database may be away: the outage handling reports that
                log.warning("answer recovery sweep failed (%s)", type(exc).__name__)
                wait = self.journal.lease / 2
            await asyncio.sleep(wait)

    async def _next_wait(self) -> float:
        half = self.journal.lease / 2
        expiry = await self.journal.next_expiry(self.adapters)
        return half if expiry is None else min(half, max(0.2, expiry + 0.1))

    async def sweep(self) -> int:
        """Claim and recover what is claimable now; how many answers were taken over."""
        await self._adopt_spools()
        claimed = await self.journal.claim(set(self.adapters))
        for row in claimed:
            await self._recover(row)
        if time.monotonic() - self._purged > PURGE_EVERY:
            self._purged = time.monotonic()
            await self.journal.purge()
        return len(claimed)

    async def _adopt_spools(self) -> None:
        """Messages a dead process on this machine held through a database outage (its
        spool file): journaled as this process's and answered (kept if the database is
        still away; lines of platforms not served here are left for a process that is)."""
        spool = self.journal.spool
        if spool is None:
            return
        for path in spool.orphans(self.journal.dead_owner):
            left = []
            for msg, action in spool.read(path):
                if msg.platform not in self.adapters:
                    left.append((msg, action))
                elif await self.journal.adopt(msg, action):
                    log.warning("answering a %s message a stopped process held through a database outage",
                                msg.platform)
                    await self._recover(Claimed(key=(msg.dedupe_key or "")[:300], platform=msg.platform,
                                                action=action, msg=msg, state="received", messages=[],
                                                native=False, attempts=1, age=0.0))
            if left:
                held = HeldSpool(folder=spool.folder, owner=unquote(path.stem))
                path.unlink()
                for msg, action in left:
                    held.add(msg, action)
            else:
                path.unlink(missing_ok=True)

    async def _recover(self, row: Claimed) -> None:
        adapter = self.adapters[row.platform]
        redo = row.action == "answer" and row.attempts <= 1 and row.age <= self.redo_within
        log.warning("taking over a %s answer left %s by a stopped process (%s)", row.platform, row.state,
                    "answering again" if redo else "closing it")
        if row.messages:
            try:
                await adapter.close_cut(row.msg, row.messages[-1], native=row.native,
                                        note=CONTINUES if redo else CUT)
            except Exception:
                log.exception("could not close the cut-off %s message %s", row.platform, row.messages[-1])
        try:
            conv = await adapter.resume(row.msg)
            if redo:
                self.submit(row.msg, conv)  # its journal row is reset by the router
                return
            if not row.messages:
                await post_whole(conv, LOST, ephemeral=row.msg.command is not None)
        except Exception:
            log.exception("could not recover the %s answer %s", row.platform, row.key)
        self.journal.queue(row.key, CLOSED, row.messages, row.native)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
