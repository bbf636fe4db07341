"""The sample "sales" database for the agent's demo and tests (`aibot agent load-sample`).

Created on the bot's own PostgreSQL server (the embedded one, or DATABASE_URL's), as a
separate database `aibot_sales` with: `regions`, `products` and `orders` (two years of
deterministic rows, the 24 months ending with the current one), plus `staff_salaries`,
a table the agent must never read. The role `aibot_agent_ro` may connect and SELECT the
three allowed tables, nothing else (no EXECUTE on functions in `public` either), and its
transactions are read-only by default: the database itself refuses writes whatever the
SQL check lets through.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timezone

import asyncpg
from sqlalchemy.engine import make_url

from bot.core.db import normalize_url
from patterns.agent.sql import connect_args

DATABASE = "aibot_sales"
ROLE = "aibot_agent_ro"
TABLES = ("orders", "products", "regions")

REGIONS = ["North", "South", "East", "West"]
PRODUCTS = [  # name, category, unit price
    ("Widget", "hardware", 19.99), ("Gadget", "hardware", 49.50), ("Sprocket", "hardware", 7.25),
    ("Cloud Basic", "subscription", 29.00), ("Cloud Pro", "subscription", 99.00), ("Support Plan", "service", 250.00),
]

SCHEMA = """
CREATE TABLE regions (id integer PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE products (id integer PRIMARY KEY, name text NOT NULL UNIQUE, category text NOT NULL,
                       unit_price numeric(10,2) NOT NULL);
CREATE TABLE orders (id integer PRIMARY KEY, order_date date NOT NULL,
                     region_id integer NOT NULL REFERENCES regions, product_id integer NOT NULL REFERENCES products,
                     quantity integer NOT NULL, amount numeric(12,2) NOT NULL);
CREATE INDEX orders_date ON orders (order_date);
CREATE TABLE staff_salaries (name text PRIMARY KEY, salary numeric(12,2) NOT NULL);
"""


@dataclass
class Loaded:
    orders: int
    first_month: date
    last_month: date
    url: str  # the read-only role's URL (without a password)


def months_back(today: date, n: int) -> list[date]:
    """The first days of the `n` months ending with `today`'s month, oldest first."""
    out = []
    y, m = today.year, today.month
    for _ in range(n):
        out.append(date(y, m, 1))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out[::-1]


def order_rows(today: date) -> list[tuple]:
    """Deterministic orders for the 24 months ending with `today`'s month (slow growth,
    a seasonal bump in November/December)."""
    rng = random.Random(20240101)
    rows, oid = [], 0
    for i, month in enumerate(months_back(today, 24)):
        season = 1.3 if month.month in (11, 12) else 1.0
        for _ in range(int((40 + i * 1.5) * season)):
            oid += 1
            pid = rng.randrange(len(PRODUCTS))
            qty = rng.randint(1, 12)
            rows.append((oid, month.replace(day=rng.randint(1, 28)), rng.randrange(len(REGIONS)) + 1, pid + 1, qty,
                         round(qty * PRODUCTS[pid][2], 2)))
    return rows


def readonly_url(admin_url: str, password: str | None = None) -> str:
    """The URL of the read-only role on the sample database, on the admin URL's server."""
    u = make_url(normalize_url(admin_url)).set(username=ROLE, password=password, database=DATABASE)
    return u.render_as_string(hide_password=False)


async def load(admin_url: str, *, today: date | None = None, password: str | None = None) -> Loaded:
    """(Re)create the sample database and the read-only role; return what was loaded."""
    from decimal import Decimal

    today = today or datetime.now(timezone.utc).date()
    admin = await asyncpg.connect(**connect_args(admin_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
        exists = await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", ROLE)
        if not exists:
            await admin.execute(f'CREATE ROLE "{ROLE}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT')
        if password:
            await admin.execute(f"ALTER ROLE \"{ROLE}\" PASSWORD '{password.replace(chr(39), chr(39) * 2)}'")
        await admin.execute(f'ALTER ROLE "{ROLE}" SET default_transaction_read_only = on')
        await admin.execute(f"ALTER ROLE \"{ROLE}\" SET statement_timeout = '30s'")
        await admin.execute(f'REVOKE ALL ON DATABASE "{DATABASE}" FROM PUBLIC')
        await admin.execute(f'GRANT CONNECT ON DATABASE "{DATABASE}" TO "{ROLE}"')
    finally:
        await admin.close()

    args = connect_args(admin_url) | {"database": DATABASE}
    conn = await asyncpg.connect(**args)
    try:
        async with conn.transaction():
            await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            # functions are executable by everyone by default; a SECURITY DEFINER one would
            # read with its owner's rights, so none in public is callable by the agent role
            await conn.execute("REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC")
            await conn.execute("ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC")
            await conn.execute(SCHEMA)
            await conn.copy_records_to_table("regions", records=[(i + 1, n) for i, n in enumerate(REGIONS)])
            await conn.copy_records_to_table(
                "products", records=[(i + 1, n, c, Decimal(str(p))) for i, (n, c, p) in enumerate(PRODUCTS)]
            )
            rows = order_rows(today)
            await conn.copy_records_to_table(
                "orders", records=[(a, b, c, d, e, Decimal(str(f))) for a, b, c, d, e, f in rows]
            )
            await conn.execute(
                "INSERT INTO staff_salaries VALUES ('Ada', 185000), ('Grace', 172000), ('Linus', 99000)"
            )
            await conn.execute(f'GRANT USAGE ON SCHEMA public TO "{ROLE}"')
            await conn.execute(f'GRANT SELECT ON {", ".join(TABLES)} TO "{ROLE}"')
    finally:
        await conn.close()
    months = months_back(today, 24)
    return Loaded(orders=len(rows), first_month=months[0], last_month=months[-1], url=readonly_url(admin_url))


async def checksum(admin_url: str) -> str:
    """One hash over every row of every table of the sample database (to prove nothing changed)."""
    conn = await asyncpg.connect(**(connect_args(admin_url) | {"database": DATABASE}))
    try:
        parts = []
        for table in (*TABLES, "staff_salaries"):
            parts.append(await conn.fetchval(
                f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
            ))
        tables = await conn.fetchval(
            "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'"
        )
        return f"{tables}:{':'.join(parts)}"
    finally:
        await conn.close()
