"""The embedded PostgreSQL server stops when its last live user exits, even after an
earlier user was killed with SIGKILL (which never runs its clean-up)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from bot.core import pgembed

HOLD = """
import sys, time
from pathlib import Path
from bot.core import pgembed
pgembed.start(Path(sys.argv[1]))
print("ready", flush=True)
time.sleep(120)
"""


def _postmaster_running(pgdata) -> bool:
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return False
    pid = int(pidfile.read_text().split()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_killed_holder_does_not_keep_the_server_running_forever(tmp_path):
    pgdata = tmp_path / "pg"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(pgdata)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        assert holder.pid in json.loads((pgdata / pgembed.HOLDERS).read_text())  # the stale id is left behind

        server, _ = pgembed.start(pgdata)  # the next start forgets it ...
        assert holder.pid not in json.loads((pgdata / pgembed.HOLDERS).read_text())
        assert _postmaster_running(pgdata)
        pgembed.stop(server)  # ... so the last live user stops the server again
        deadline = time.monotonic() + 10
        while _postmaster_running(pgdata) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _postmaster_running(pgdata)
    finally:
        if holder.poll() is None:
            holder.kill()


def test_live_holders_are_kept(tmp_path):
    pgdata = tmp_path / "pg"
    pgdata.mkdir()
    (pgdata / pgembed.HOLDERS).write_text(json.dumps([os.getpid(), 2**22 + 12345]))
    assert pgembed.forget_dead_holders(pgdata) == [2**22 + 12345]
    assert json.loads((pgdata / pgembed.HOLDERS).read_text()) == [os.getpid()]
