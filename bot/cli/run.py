"""`aibot run` (every configured platform, else the console), `aibot chat` (the
console) and `aibot db upgrade`: the CLI's own subcommands."""
from __future__ import annotations

import signal
import sys

from bot.cli.workers import is_worker, supervise
from bot.app.runtime import announce_storage
from bot.core.db import Database, redact
from bot.core.errors import ConfigError
from bot.core.settings import LLM_SETUP_HINT


def add(cli) -> None:
    p = cli.add("run", help="run the bot on every configured platform (the console if none)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="run N bot processes sharing the HTTP port and the database (default: AIBOT_WORKERS, 1)")
    p.set_defaults(run=run, console_only=False)
    p = cli.add("chat", help="talk to the bot on this terminal")
    p.set_defaults(run=run, console_only=True)
    p = cli.add("db", help="database maintenance")
    dsub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = dsub.add_parser("upgrade", help="apply pending migrations (the bot also does this at start)")
    up.set_defaults(run=upgrade)


async def run(args, rt) -> int:
    if not rt.settings.llm_configured:
        print(f"aibot: note: {LLM_SETUP_HINT}", file=sys.stderr)
    workers = getattr(args, "workers", None)
    if workers is not None and workers < 1:
        raise ConfigError("--workers takes a number of processes, 1 or more, e.g. --workers 2")
    if workers is not None:
        rt.settings.workers = workers
    if rt.settings.workers > 1 and not args.console_only and not is_worker():
        return await supervise(rt, rt.settings.workers)
    async with rt.open() as app:
        adapters = app.adapters(console_only=args.console_only)
        await app.serve(adapters)
    # Ctrl-C exits like an interrupted shell command (128 + SIGINT); SIGTERM is a clean stop;
    # otherwise an adapter may report how its session went (the console: 3 when a piped answer failed)
    if app.stopped_by == signal.SIGINT:
        return 130
    return max((getattr(a, "exit_status", lambda: 0)() for a in adapters), default=0)


async def upgrade(args, rt) -> int:
    db = await Database.open(rt.settings)
    announce_storage(rt.settings, db)
    try:
        revision = await db.upgrade()
    finally:
        await db.close()
    print(f"database at revision {revision} ({redact(db.url)})")
    return 0
