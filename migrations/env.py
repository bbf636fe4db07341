"""Alembic environment (async). The bot passes an open connection in
`config.attributes["connection"]`; run from the `alembic` command line, the database
comes from DATABASE_URL."""
import asyncio
import os

from alembic import context
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.core.db import normalize_url
from bot.core.models import Base

config = context.config
target_metadata = Base.metadata

# One migrator at a time, also when several replicas start together.
MIGRATION_LOCK = 7_201_944_001


def do_run_migrations(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        context.run_migrations()


async def run_async_migrations() -> None:
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("Set DATABASE_URL to run alembic directly (or use `aibot db upgrade`).")
    engine = create_async_engine(normalize_url(url))
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(url=os.environ.get("DATABASE_URL", "postgresql://"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
elif (connection := config.attributes.get("connection")) is not None:
    do_run_migrations(connection)
else:
    asyncio.run(run_async_migrations())
