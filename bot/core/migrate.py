"""Run the Alembic migrations in migrations/ on an async engine."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> str:
    """Apply migrations up to `revision`; return the revision the database is at."""
    cfg = alembic_config()

    def run(connection) -> str:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
        return MigrationContext.configure(connection).get_current_revision() or ""

    async with engine.begin() as conn:
        return await conn.run_sync(run)
