"""`aibot agent load-sample`: create the demo "sales" database and its read-only role."""
from __future__ import annotations

from bot.db import Database, redact


def add_parser(sub) -> None:
    p = sub.add_parser("agent", help="agent pattern tools")
    asub = p.add_subparsers(dest="agent_command", required=True, metavar="ACTION")
    load = asub.add_parser(
        "load-sample",
        help="(re)create the sample sales database and a read-only role for the agent's sql_query tool",
    )
    load.add_argument(
        "--password", default=None,
        help="password for the read-only role (needed when DATABASE_URL's server asks for one; "
             "the embedded server trusts local connections)",
    )
    load.set_defaults(func=load_sample)


async def load_sample(args, settings) -> int:
    from patterns.agent.sample import DATABASE, ROLE, load

    db = await Database.open(settings)
    try:
        loaded = await load(db.url, password=args.password)
    finally:
        await db.close()
    print(
        f"sample database {DATABASE} loaded: {loaded.orders:,} orders from {loaded.first_month:%Y-%m} "
        f"to {loaded.last_month:%Y-%m} in orders, products, regions; read-only role {ROLE}."
    )
    if settings.agent_sql_url:
        print(f"note: AGENT_SQL_URL is set ({redact(settings.agent_sql_url)}), so the agent queries that database, not this one.")
    else:
        print(f"The agent's sql_query tool uses it by default ({redact(loaded.url)}); set AGENT_SQL_URL to use another database.")
    return 0
