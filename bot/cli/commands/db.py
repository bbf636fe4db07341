"""`aibot db upgrade`: apply database migrations (the bot also does this at start)."""
from __future__ import annotations

from bot.core.db import Database, redact


def add_parser(sub) -> None:
    p = sub.add_parser("db", help="database maintenance")
    dsub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = dsub.add_parser("upgrade", help="apply pending migrations")
    up.set_defaults(func=upgrade)


async def upgrade(args, settings) -> int:
    db = await Database.open(settings)
    try:
        revision = await db.upgrade()
    finally:
        await db.close()
    print(f"database at revision {revision} ({redact(db.url)})")
    return 0
