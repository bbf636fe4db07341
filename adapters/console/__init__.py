"""Console: the terminal (or a pipe) as one channel (`adapters.console.adapter`), the
fallback platform when no other is configured."""
from __future__ import annotations

from bot.core.feature import Platform


class Console(Platform):
    name = "console"
    fallback = True

    @classmethod
    def create(cls, section, settings):
        from adapters.console.adapter import ConsoleAdapter

        # the prompt's history lives with the bot's other data (the data directory)
        return ConsoleAdapter(bot_name=settings.bot_name, history_file=settings.data_dir / "console_history")


PLATFORM = Console
