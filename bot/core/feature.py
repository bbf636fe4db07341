"""Features and platforms: the units the composition root lists, one line each.

A *feature* (every pattern, and the core's usage stats) is a class that sets itself up
from the composed bot and tears itself down, like a discord.py cog. It owns:

- its settings section (`settings_model`), read once and handed to it as `self.settings`;
- its chat commands, mention/DM answerers and file ingestion: methods decorated with
  `bot.core.commands.command`, `answerer` and `ingest`;
- its storage (tables in the one migration chain) and whatever it builds in `__init__`;
- its HTTP routes (`mount`), background work (`start`/`stop`), resources (`close`);
- its `aibot` subcommands (`add_cli`), which reach the composed bot through a `Runtime`.

A *platform* is found by name and owns its settings section too; the composition root
builds its adapter only when its settings say it is configured, so a platform's SDK is
imported only where it runs.
"""
from __future__ import annotations

import argparse
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from bot.core.commands import CommandSpec, Group, declarations
from bot.core.settings import Section, Settings

if TYPE_CHECKING:
    from aiohttp import web

    from bot.core.router import Router
    from bot.core.services import Services
    from bot.core.surface import Adapter

F = TypeVar("F", bound="Feature")


class Host(Protocol):
    """What a feature (or a CLI subcommand) sees of the composed bot."""

    settings: Settings
    services: "Services"
    router: "Router"

    def feature(self, cls: type[F]) -> F:
        """The running instance of a feature class (KeyError if it is not composed in)."""
        ...


class Runtime(Protocol):
    """What an `aibot` subcommand gets besides its arguments."""

    settings: Settings
    platforms: tuple[str, ...]  # the names of the platforms this build knows

    def open(self) -> AbstractAsyncContextManager[Host]:
        """The composed bot: storage connected and migrated, features set up, not serving."""
        ...


class Cli(Protocol):
    """Where features add their `aibot` subcommands."""

    def add(self, name: str, *, help: str) -> argparse.ArgumentParser:
        """A new subcommand's parser; its handlers are set with `set_defaults(run=handler)`,
        `handler(args, runtime) -> exit code`."""
        ...


class Feature:
    """Base of every feature; see the module docstring."""

    name: ClassVar[str]
    settings_model: ClassVar[type[Section] | None] = None
    groups: ClassVar[tuple[Group, ...]] = ()  # command groups its subcommands belong to

    def __init__(self, host: Host) -> None:
        self.host = host
        self.services = host.services
        self.settings: Any = host.settings.section(self.settings_model) if self.settings_model else None

    @classmethod
    def command_specs(cls) -> list[CommandSpec]:
        return [d.spec for _, d in declarations(cls) if d.spec is not None]

    def mount(self, http: "web.Application") -> None:
        """Add HTTP routes to the bot's server (called before it starts)."""

    async def start(self) -> None:
        """Start background work; only when the bot serves (`aibot run`)."""

    async def stop(self) -> None:
        """Stop background work; before the adapters stop."""

    async def close(self) -> None:
        """Release what `__init__` opened."""

    @classmethod
    def add_cli(cls, cli: Cli) -> None:
        """Add `aibot` subcommands."""


class Platform:
    """Base of every platform descriptor (the package's `__init__`)."""

    name: ClassVar[str]
    settings_model: ClassVar[type[Section] | None] = None
    fallback: ClassVar[bool] = False  # runs when no other platform is configured (the console)

    @classmethod
    def configured(cls, section: Any) -> bool:
        """True when its settings (a token, say) are there."""
        return False

    @classmethod
    def incomplete(cls, section: Any) -> str | None:
        """When some of its settings are set but not enough to run (`configured` is
        False): what else to set, as one sentence naming the variables. The bot then
        refuses to start instead of quietly falling back to the console."""
        return None

    @classmethod
    def create(cls, section: Any, settings: Settings) -> "Adapter":
        """Build the adapter (import the SDK here, not at module level)."""
        raise NotImplementedError
