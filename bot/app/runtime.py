"""What an `aibot` subcommand runs against (`bot.core.feature.Runtime`): the settings,
and the composed bot on demand."""
from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from bot.app.app import App
from bot.core.db import Database
from bot.core.feature import Feature, Platform
from bot.core.settings import Settings


class Runtime:
    def __init__(self, settings: Settings, *, features: Sequence[type[Feature]],
                 platforms: Sequence[type[Platform]]) -> None:
        self.settings = settings
        self.features = tuple(features)
        self.platform_types = tuple(platforms)

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.platform_types)

    def validate(self) -> None:
        """Read every feature's and platform's settings section now, so a bad variable
        is one clear error before anything starts (ConfigError)."""
        for unit in (*self.features, *self.platform_types):
            if unit.settings_model is not None:
                self.settings.section(unit.settings_model)

    @asynccontextmanager
    async def open(self) -> AsyncIterator[App]:
        app = await App.open(self.settings, features=self.features, platforms=self.platform_types)
        announce_storage(self.settings, app.services.db)
        async with app:
            yield app


def announce_storage(settings: Settings, db: Database) -> None:
    """Say on stderr where a new embedded database was made, and how to move a legacy
    `./.aibot` one: a database appearing somewhere unexpected is never silent."""
    if settings.database_url is None and settings.data_dir_note:
        print(f"aibot: note: {settings.data_dir_note}", file=sys.stderr)
    if db.created is not None:
        print(f"aibot: created a new database in {db.created} (AIBOT_DATA_DIR chooses where)", file=sys.stderr)
