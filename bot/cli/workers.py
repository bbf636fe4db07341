"""`aibot run --workers N`: N bot processes on one machine, sharing what they must.

The parent migrates the database once (starting the embedded server when DATABASE_URL is
unset, and keeping it up while the workers run), then starts N copies of `aibot run`
with AIBOT_WORKERS=N and AIBOT_WORKER_ID=0..N-1, and forwards SIGINT/SIGTERM to them.
Each worker is a whole bot: Slack HTTP mode binds the same port with SO_REUSEPORT (the
kernel spreads connections over the workers), Socket Mode opens one connection per
worker (Slack spreads events over them), and every worker shares PostgreSQL, so a
delivery seen by two workers is answered once (the dedupe table), and scheduled work
has one leader. When a worker exits, the others are stopped and the exit code is its.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from contextlib import suppress

from bot.core.db import Database
from bot.core.errors import ConfigError

log = logging.getLogger(__name__)

WORKER_ID = "AIBOT_WORKER_ID"


def is_worker() -> bool:
    return WORKER_ID in os.environ


async def supervise(rt, workers: int) -> int:
    """Start `workers` bot processes and wait for them; see the module docstring."""
    platforms = [p for p in rt.platform_types if not p.fallback
                 and p.configured(rt.settings.section(p.settings_model) if p.settings_model else None)]
    if not platforms:
        raise ConfigError("--workers needs a platform to serve (e.g. SLACK_BOT_TOKEN); the console runs in one process.")
    db = await Database.open(rt.settings)  # the embedded server stays up while this handle lives
    try:
        await db.upgrade()
        await db.engine.dispose()  # the workers have their own pools
        procs = []
        for i in range(workers):
            env = {**os.environ, "AIBOT_WORKERS": str(workers), WORKER_ID: str(i)}
            procs.append(await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "run", env=env))
        return await _wait(procs)
    finally:
        await db.close()


async def _wait(procs: list) -> int:
    loop = asyncio.get_running_loop()
    stopping = False

    def stop(sig: int = signal.SIGTERM) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.returncode is None:
                with suppress(ProcessLookupError):
                    p.send_signal(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)
    try:
        waits = {asyncio.ensure_future(p.wait()): p for p in procs}
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        first = next(iter(done)).result()
        if not stopping:
            print(f"aibot: a worker exited ({first}); stopping the others", file=sys.stderr)
            stop()
        codes = [first] + [await t for t in pending]
        return next((c for c in codes if c not in (0, None)), 0) if not stopping else max(codes, key=abs)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
