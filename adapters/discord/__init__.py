"""Discord: discord.py's gateway client, application commands built from the bot's
command declarations, streamed answers by edits (`adapters.discord.adapter`). The
descriptor below is all the composition root sees; discord.py is imported only when
Discord runs."""
from __future__ import annotations

from adapters.discord.settings import DiscordSettings
from bot.core.feature import Platform


class Discord(Platform):
    name = "discord"
    settings_model = DiscordSettings

    @classmethod
    def configured(cls, section: DiscordSettings) -> bool:
        return section.bot_token is not None

    @classmethod
    def create(cls, section: DiscordSettings, settings):
        from adapters.discord.adapter import DiscordAdapter

        return DiscordAdapter(
            token=section.bot_token.get_secret_value(),
            api_url=section.api_url,
            shard_count=section.shard_count,
            shard_ids=section.shards(),
            max_file_bytes=section.max_file_bytes,
            sync_commands=section.sync_commands,
        )


PLATFORM = Discord
