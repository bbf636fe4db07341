"""`aibot run` (every configured platform, else the console), `aibot chat` (the
console) and `aibot db upgrade`: the CLI's own subcommands."""
from __future__ import annotations

import sys

from bot.app.runtime import announce_storage
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
        adapters = app.adapters(console_only=args.console_only)
        await app.serve(adapters)
    # an adapter may report how its session went (the console: 3 when a piped answer failed)
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
