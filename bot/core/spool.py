"""Answers held through a database outage, kept on local disk as well as in memory, so
that a process that dies before the database returns does not lose them: the next
process on this machine (same host and PID namespace) finds the file of the dead one and
writes the messages into the answer journal once the database answers, to be answered.

One JSON line per held message in `<data dir>/held/<owner>.jsonl`, flushed and fsynced
before the asker is told the answer is delayed; the file goes when the outage's queue
is drained (by then every held message has its journal row)."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from urllib.parse import quote, unquote

from bot.core import incoming_json
from bot.core.messages import Incoming

log = logging.getLogger(__name__)


class HeldSpool:
    def __init__(self, *, folder: Path, owner: str) -> None:
        self.folder = Path(folder)
        self.owner = owner
        self.path = self.folder / f"{quote(owner, safe='')}.jsonl"

    def add(self, msg: Incoming, action: str) -> None:
        """Keep `msg` on disk until `clear` (failures are logged: memory still holds it)."""
        line = json.dumps({"action": action, "incoming": json.loads(incoming_json.dumps(msg))}, ensure_ascii=False)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            log.warning("could not keep a held message on disk (%s)", self.path, exc_info=True)

    def clear(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            log.warning("could not remove %s", self.path, exc_info=True)

    def orphans(self, dead) -> list[Path]:
        """Files of owners `dead(owner)` says are gone."""
        if not self.folder.is_dir():
            return []
        return [p for p in sorted(self.folder.glob("*.jsonl")) if p != self.path and dead(unquote(p.stem))]

    @staticmethod
    def read(path: Path) -> list[tuple[Incoming, str]]:
        """The held messages in `path` (a line cut by the crash is skipped)."""
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                d = json.loads(line)
                out.append((incoming_json.loads(d["incoming"]), d["action"]))
            except (ValueError, KeyError, TypeError):
                log.warning("skipping an unreadable held message in %s", path)
        return out
