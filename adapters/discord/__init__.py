"""Discord: discord.py gateway client, application commands, streamed answers by edits."""
from adapters.discord.adapter import DiscordAdapter

__all__ = ["DiscordAdapter"]
