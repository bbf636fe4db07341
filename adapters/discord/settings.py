"""Discord's settings section (DISCORD_*)."""
from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr

from bot.core.errors import ConfigError
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
        description="the bot's total number of Discord shards (unset: the count Discord recommends via "
        "`/gateway/bot`, one for most bots); this process runs them all unless `DISCORD_SHARD_IDS` is set",
    )
    shard_ids: str | None = env(
        "DISCORD_SHARD_IDS", None, pattern=r"^\s*\d+\s*(,\s*\d+\s*)*$",
        description="comma-separated shards this process runs, e.g. `0,1` with `DISCORD_SHARD_COUNT=4` "
        "(the other shards in other processes or hosts); unset: every shard",
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

    def shards(self) -> list[int] | None:
        """The shard ids of DISCORD_SHARD_IDS, checked against DISCORD_SHARD_COUNT; None: all."""
        if not self.shard_ids:
            return None
        ids = sorted({int(x) for x in self.shard_ids.split(",")})
        if self.shard_count is None or ids[-1] >= self.shard_count:
            raise ConfigError(
                "DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT, and every id below it: "
                "e.g. DISCORD_SHARD_COUNT=4 DISCORD_SHARD_IDS=0,1 here and DISCORD_SHARD_IDS=2,3 in a second process."
            )
        return ids
