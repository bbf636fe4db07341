"""`aibot run` (every configured platform, else the console), `aibot chat` (the
console) and `aibot db upgrade`: the CLI's own subcommands."""
from __future__ import annotations

import signal
import sys

from bot.core.db import Database, redact
from bot.core.settings import LLM_SETUP_HINT


def add(cli) -> None:
    p = cli.add("run", help="run the bot on every configured platform (the console if none)")
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
    async with rt.open() as app:
        await app.serve(app.adapters(console_only=args.console_only))
    # Ctrl-C exits like an interrupted shell command (128 + SIGINT); SIGTERM is a clean stop
    return 130 if app.stopped_by == signal.SIGINT else 0


async def upgrade(args, rt) -> int:
    db = await Database.open(rt.settings)
    try:
        revision = await db.upgrade()
    finally:
        await db.close()
    print(f"database at revision {revision} ({redact(db.url)})")
    return 0
