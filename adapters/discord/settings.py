"""Discord's settings section (DISCORD_*)."""
from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr

from bot.core.settings import Section, env


class DiscordSettings(Section):
    title: ClassVar[str] = "Discord"

    bot_token: SecretStr | None = env(
        "DISCORD_BOT_TOKEN", None, description="the bot's token from the Developer Portal; set: the bot runs on Discord"
    )
    api_url: str | None = env(
        "DISCORD_API_URL", None, description="base URL of Discord's REST API (unset: `https://discord.com/api/v10`)"
    )
    shard_count: int | None = env(
        "DISCORD_SHARD_COUNT", None, ge=1,
        description="Discord shards to run in this process (unset: the count Discord recommends via "
        "`/gateway/bot`, one for most bots)",
    )
    max_file_bytes: int = env(
        "DISCORD_MAX_FILE_BYTES", 25 * 1024 * 1024, ge=1,
        description="largest Discord attachment the bot downloads (bigger files get a clear refusal)",
    )
    sync_commands: bool = env(
        "DISCORD_SYNC_COMMANDS", True,
        description="register the slash commands with Discord at every start (`false` once they are registered, "
        "to skip the call)",
    )
