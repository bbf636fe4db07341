"""What an `aibot` subcommand runs against (`bot.core.feature.Runtime`): the settings,
and the composed bot on demand."""
from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from bot.app.app import App
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
        async with app:
            yield app
