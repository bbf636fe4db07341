"""`aibot agent load-sample`: create the demo "sales" database and its read-only role."""
from __future__ import annotations

from bot.core.db import Database, redact
from patterns.agent.settings import AgentSettings


def add(cli) -> None:
    p = cli.add("agent", help="agent pattern tools")
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
    load.set_defaults(run=load_sample)
    runs = asub.add_parser("runs", help="the latest agent runs: steps, tokens, cost, the limit that stopped them")
    runs.add_argument("--limit", type=int, default=20, help="how many runs (default 20)")
    runs.add_argument("--json", action="store_true", help="machine-readable output")
    runs.set_defaults(run=show_runs)


async def load_sample(args, rt) -> int:
    from patterns.agent.sample import DATABASE, ROLE, load

    import asyncpg

    from bot.core.errors import ConfigError

    db = await Database.open(rt.settings)
    try:
        loaded = await load(db.url, password=args.password)
    except (asyncpg.PostgresError, OSError) as exc:
        reason = (getattr(exc, "message", None) or type(exc).__name__).splitlines()[0][:200]
        raise ConfigError(
            f"could not create the sample database on {redact(db.url)}: {reason}. The database role in "
            "DATABASE_URL needs the CREATEDB and CREATEROLE rights (or run this once as a superuser)."
        ) from None
    finally:
        await db.close()
    print(
        f"sample database {DATABASE} loaded: {loaded.orders:,} orders from {loaded.first_month:%Y-%m} "
        f"to {loaded.last_month:%Y-%m} in orders, products, regions; read-only role {ROLE}."
    )
    sql_url = rt.settings.section(AgentSettings).sql_url
    if sql_url:
        print(f"note: AGENT_SQL_URL is set ({redact(sql_url)}), so the agent queries that database, not this one.")
    elif args.password:
        from patterns.agent.sample import readonly_url

        print(f"Set AGENT_SQL_URL={redact(readonly_url(db.url, args.password))} (with the password you chose) "
              "so the agent's sql_query tool can log in as that role.")
    else:
        print(f"The agent's sql_query tool uses it by default ({redact(loaded.url)}); set AGENT_SQL_URL to use another database.")
    return 0


async def show_runs(args, rt) -> int:
    import json

    from patterns.agent.runs import recent_runs

    db = await Database.open(rt.settings)
    try:
        await db.upgrade()
        runs = await recent_runs(db, limit=max(1, args.limit))
    finally:
        await db.close()
    if args.json:
        print(json.dumps([r.as_json() for r in runs], indent=2))
    elif not runs:
        print("No agent runs recorded yet.")
    else:
        print(f"{'started (UTC)':19}  {'run':12}  {'steps':>5}  {'tokens':>7}  {'cost $':>8}  stopped by")
        for r in runs:
            print(f"{r.started:%Y-%m-%d %H:%M:%S}  {r.run:12}  {r.steps:>5}  {r.tokens:>7}  "
                  f"{r.cost_usd:>8.4f}  {r.limit or '-'}")
    return 0
