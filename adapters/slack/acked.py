"""Events the intake acknowledged, kept on local disk until the adapter has handed them to
the core, so that a process killed in between (kill -9, out of memory) does not lose
them: Slack will not deliver an acknowledged event again, and under load the main loop
may take seconds to reach one.

One file per event in `<data dir>/acked/<owner>/`, written (not fsynced: it has to
survive the process, not the host) before the acknowledgement and removed once the
event's answer is finished (by then its journal row has long been written). At start a
process replays the folders of owners that ran on this machine and are gone; each event
goes through Bolt and the router as on first delivery, whose dedupe (Slack's
`event_id`, in PostgreSQL) drops the ones already taken, and the answer journal finishes
those cut off mid-answer. Without AIBOT_DATA_DIR there is no spool.
"""
from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
import logging
from pathlib import Path
from urllib.parse import quote, unquote

log = logging.getLogger(__name__)


class Claim:
    """One event's file, while its dispatch runs: whoever takes the answer over (the
    adapter's `_submit`) removes it when the answer is finished; otherwise the dispatch."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.taken = False
        self.finished = asyncio.Event()  # set on the main loop, by `done`

    def done(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            log.warning("could not remove %s", self.path, exc_info=True)
        self.finished.set()

    def release(self) -> None:
        """Given up in this process (it is stopping): the file stays for the next start."""
        self.finished.set()


CLAIM: contextvars.ContextVar[Claim | None] = contextvars.ContextVar("acked_claim", default=None)


class AckedSpool:
    def __init__(self, *, folder: Path, owner: str) -> None:
        self.folder = Path(folder)
        self.dir = self.folder / quote(owner, safe="")
        self._seq = itertools.count()  # thread-safe enough: next() on a count is atomic under the GIL
        self._made = False  # the folder exists

    def add(self, payload: dict, raw: bytes | None = None) -> Path | None:
        """Keep an event (from the intake's thread; `raw`: its JSON as received, when at
        hand); None when the disk refuses (logged)."""
        path = self.dir / f"{next(self._seq):012d}.json"
        try:
            if not self._made:
                self.dir.mkdir(parents=True, exist_ok=True)
                self._made = True
            path.write_bytes(raw if raw is not None else json.dumps(payload).encode())
        except OSError:
            log.warning("could not keep an acknowledged Slack event on disk (%s)", path, exc_info=True)
            return None
        return path

    def orphans(self, dead) -> list[Path]:
        """Folders of owners `dead(owner)` says are gone."""
        if not self.folder.is_dir():
            return []
        return [p for p in sorted(self.folder.iterdir()) if p.is_dir() and p != self.dir and dead(unquote(p.name))]

    @staticmethod
    def read(folder: Path) -> list[tuple[Path, dict]]:
        """The events left in a dead owner's folder (a file cut by the crash is dropped)."""
        out = []
        for path in sorted(folder.glob("*.json")):
            try:
                out.append((path, json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError):
                log.warning("an acknowledged Slack event left unreadable: %s", path)
                path.unlink(missing_ok=True)
        return out
