"""Discord adapter: discord.py's gateway client, normalized into the core's `Incoming`.

Messages (mentions, DMs, replies to the bot, messages in threads the bot started) and
application commands become `Incoming`s; answers go back through the conversations in
`adapters.discord.conversation`. Dropping own/other bots' messages and duplicates is the
router's job: this module only sets the flags. No AI logic here.
"""
from __future__ import annotations

import asyncio
import logging
import re
from contextlib import suppress

import aiohttp
import discord
import discord.gateway
import discord.http
import yarl

from adapters.discord import metering
from adapters.discord.commands import build_tree
from adapters.discord.controls import ReasonModal, button_class
from adapters.discord.conversation import (
    NO_PINGS,
    ChannelConversation,
    ChannelPacer,
    ComponentConversation,
    InteractionConversation,
    MessageConversation,
    strip_mention,
    with_note,
)
from bot.core.answers import BAD, REASON, STOP, Press
from bot.core.commands import CommandSet
from bot.core.errors import ConfigError, unreachable
from bot.core.messages import Attachment, Incoming
from bot.core.surface import Dispatch

log = logging.getLogger(__name__)

# messages and reactions = guild + DM ones; reactions: a 🛑 on an answer being written stops it
INTENTS = dict(guilds=True, messages=True, message_content=True, reactions=True)
STOP_EMOJI = frozenset({"🛑", "⏹️", "⏹"})
_ANSWERABLE = (discord.MessageType.default, discord.MessageType.reply)


def use_api_base(api_url: str) -> None:
    """Point discord.py's REST client (and with it /gateway/bot, hence the gateway) at
    `api_url`, e.g. "https://discord.com/api/v10".

    discord.py builds every request URL, webhooks and interaction responses included, from
    the documented class attribute `discord.http.Route.BASE`; it has no per-client option.
    This is the one place it is set, from DISCORD_API_URL. It is process-wide, which is
    fine: one process talks to one Discord.
    """
    base = api_url.rstrip("/")
    if not re.search(r"/v\d+$", base):  # "https://discord.com/api" means the version discord.py speaks
        base += f"/v{discord.http.INTERNAL_API_VERSION}"
    discord.http.Route.BASE = base


async def use_gateway_of(client: discord.Client) -> None:
    """With a fixed shard count discord.py skips /gateway/bot and dials its built-in
    gateway URL; against a DISCORD_API_URL server, use the URL that server announces
    (the class attribute `DiscordWebSocket.DEFAULT_GATEWAY` is discord.py's only knob)."""
    _, url, _ = await client.http.get_bot_gateway()
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)


class DiscordAdapter:
    name = "discord"

    def __init__(
        self,
        *,
        token: str,
        api_url: str | None = None,
        shard_count: int | None = None,
        shard_ids: list[int] | None = None,
        max_file_bytes: int = 25 * 1024 * 1024,
        sync_commands: bool = True,
        ready_timeout: float = 60.0,
        guild_ready_timeout: float = 2.0,
    ) -> None:
        if api_url:
            use_api_base(api_url)
        self._token = token
        self.max_file_bytes = max_file_bytes
        self.sync_commands = sync_commands
        self.ready_timeout = ready_timeout
        intents = discord.Intents.none()
        for flag, on in INTENTS.items():
            setattr(intents, flag, on)
        # The sharded client asks /gateway/bot for the gateway URL and the recommended shard
        # count (one for a small bot) unless DISCORD_SHARD_COUNT fixes the count;
        # DISCORD_SHARD_IDS runs only some of them here (the rest in other processes).
        self.client: discord.Client = discord.AutoShardedClient(
            intents=intents, shard_count=shard_count or None, shard_ids=shard_ids, allowed_mentions=NO_PINGS,
            guild_ready_timeout=guild_ready_timeout, http_trace=metering.trace_config(),
        )
        self._custom_api = bool(api_url)
        self.tree = None  # built at start, from the bot's command declarations
        self.pacer = ChannelPacer()
        self._dispatch: Dispatch | None = None
        self._runner: asyncio.Task | None = None
        self._tasks: set[asyncio.Future] = set()

        self._tenants = None  # the core's tenant lifecycle (`bind`)
        # the buttons under answers: one persistent type, found again by its custom_id
        self.control_button = button_class(self._on_control)
        self.client.add_dynamic_items(self.control_button)

        @self.client.event
        async def on_message(message: discord.Message) -> None:
            await self._on_message(message)

        @self.client.event
        async def on_raw_reaction_add(payload: discord.RawReactionActionEvent) -> None:
            self._on_reaction(payload)

        @self.client.event
        async def on_guild_remove(guild: discord.Guild) -> None:
            await self._guild_removed(guild)

        @self.client.event
        async def on_guild_join(guild: discord.Guild) -> None:
            if self._tenants is not None:  # back within the grace period: its data stays
                await self._tenants.restored(platform="discord", tenant=str(guild.id))

    def bind(self, services) -> None:
        """The core's tenant lifecycle (before `start`)."""
        self._tenants = getattr(services, "tenants", None)

    async def _guild_removed(self, guild: discord.Guild) -> None:
        """Kicked, banned or left (GUILD_DELETE without `unavailable`): the guild's data goes
        after the grace period."""
        log.warning("removed from Discord guild %s", guild.id)
        if self._tenants is not None:
            try:
                await self._tenants.removed(platform="discord", tenant=str(guild.id), reason="guild_removed")
            except Exception:
                log.exception("could not record the removal from guild %s", guild.id)

    @property
    def bot_id(self) -> int:
        return self.client.user.id if self.client.user else 0

    # --- lifecycle ------------------------------------------------------------------

    async def start(self, dispatch: Dispatch, *, commands: CommandSet = CommandSet()) -> None:
        """Log in, register the commands, connect the gateway; return once READY."""
        self._dispatch = dispatch
        if self.tree is None:
            self.tree = build_tree(self.client, commands, self._on_command)
        try:
            await self.client.login(self._token)
            if self._custom_api and self.client.shard_count is not None:
                await use_gateway_of(self.client)
            if self.sync_commands:
                await self.tree.sync()
        except discord.LoginFailure:
            await self.client.close()
            raise ConfigError(
                "Discord rejected DISCORD_BOT_TOKEN. Copy the bot token from the Developer Portal "
                "(Bot > Reset Token), e.g. DISCORD_BOT_TOKEN=MTEx..."
            ) from None
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            await self.client.close()
            raise unreachable("Discord API", discord.http.Route.BASE, "DISCORD_API_URL", exc) from None
        self._runner = asyncio.create_task(self.client.connect(reconnect=True), name="discord-gateway")
        self._runner.add_done_callback(_log_end)
        ready = asyncio.create_task(self.client.wait_until_ready())
        done, _ = await asyncio.wait({ready, self._runner}, timeout=self.ready_timeout, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            if self._runner in done:
                self._runner.result()  # raises what stopped the gateway (e.g. missing intents)
            await self.stop()
            raise ConfigError(f"The Discord gateway did not become ready within {self.ready_timeout:.0f} s.")
        log.info("discord: connected as %s", self.client.user)

    async def wait_closed(self) -> None:
        if self._runner is not None:
            with suppress(asyncio.CancelledError):
                await self._runner

    async def stop(self) -> None:
        await self.client.close()
        if self._runner is not None and not self._runner.done():
            self._runner.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await self._runner

    def conversation(self, *, tenant: str, channel: str, thread: str | None = None) -> ChannelConversation:
        """Posts to a channel (or a thread, which Discord addresses as a channel)."""
        cid = int(thread or channel)
        target = self.client.get_channel(cid) or self.client.get_partial_messageable(cid)
        return ChannelConversation(self, target)  # type: ignore[arg-type]

    # --- answers a stopped process left cut off (bot.core.recovery) ---------------------

    def _channel(self, cid: str):
        return self.client.get_channel(int(cid)) or self.client.get_partial_messageable(int(cid))

    async def resume(self, msg: Incoming) -> MessageConversation:
        """Where to answer `msg` again: a reply to it, as the first time (the message is
        fetched again; a command's answer goes to its channel)."""
        channel = self._channel(msg.channel)
        origin = None
        if msg.command is None and msg.id:
            with suppress(discord.HTTPException):
                origin = await channel.fetch_message(int(msg.id))
        files = {a.url: a for a in origin.attachments} if origin is not None else {}
        return MessageConversation(self, channel, origin=origin, files=files)

    async def close_cut(self, msg: Incoming, message_id: str, *, native: bool, note: str) -> None:
        """The note edited in under the cut-off text (its buttons removed), so that it does
        not look like a finished answer."""
        try:
            sent = await self._channel(msg.channel).fetch_message(int(message_id))
        except discord.NotFound:
            log.info("the cut-off message %s is gone; nothing to close", message_id)
            return
        await sent.edit(content=with_note(sent.content, note), view=None, allowed_mentions=NO_PINGS)

    # --- events -> Incoming ------------------------------------------------------------

    def _submit(self, msg: Incoming | Press, conv) -> None:
        """Hand over without waiting: the router answers in its own task."""
        assert self._dispatch is not None
        self._track(self._dispatch(msg, conv))

    def _track(self, awaitable) -> None:
        fut = asyncio.ensure_future(awaitable)
        self._tasks.add(fut)
        fut.add_done_callback(self._tasks.discard)

    async def _on_message(self, message: discord.Message) -> None:
        if message.type not in _ANSWERABLE:
            return  # joins, pins, thread-created notices ...
        try:
            msg = await self.incoming(message)
        except Exception:
            log.exception("could not read a Discord message %s", message.id)
            return
        files = {a.url: a for a in message.attachments}
        self._submit(msg, MessageConversation(self, message.channel, origin=message, files=files))

    async def incoming(self, message: discord.Message) -> Incoming:
        """A gateway message as the core's `Incoming`."""
        bot_id = self.bot_id
        from_self = message.author.id == bot_id
        mentioned = bool(re.search(rf"<@!?{bot_id}>", message.content))
        channel = message.channel
        thread = None
        in_bot_thread = False
        if isinstance(channel, discord.Thread):
            thread = str(channel.id)
            in_bot_thread = channel.owner_id == bot_id
        elif message.reference is not None and message.reference.message_id and not from_self:
            thread = str(message.reference.message_id)
            in_bot_thread = await self._replies_to_bot(message)
        return Incoming(
            platform="discord",
            tenant=tenant_of(message.guild.id if message.guild else None, message.author.id),
            channel=str(channel.id),
            user=str(message.author.id),
            user_name=message.author.display_name,
            text=strip_mention(message.content, bot_id),
            id=str(message.id),
            thread=thread,
            mentioned=mentioned,
            is_dm=message.guild is None,
            in_bot_thread=in_bot_thread,
            from_self=from_self,
            from_bot=message.author.bot and not from_self,
            is_admin=_manages_guild(message.author),
            attachments=tuple(_attachment(a) for a in message.attachments),
            dedupe_key=f"discord:message:{message.id}",
            ts=message.created_at,
            raw=message,
        )

    async def _replies_to_bot(self, message: discord.Message) -> bool:
        ref = message.reference
        parent = ref.resolved if isinstance(ref.resolved, discord.Message) else ref.cached_message
        if parent is None and ref.message_id:
            with suppress(discord.HTTPException):
                parent = await message.channel.fetch_message(ref.message_id)
        return parent is not None and parent.author.id == self.bot_id

    async def _on_command(self, interaction: discord.Interaction, name: str, options: dict) -> None:
        # Discord's deadline is 3 s: acknowledge ("thinking…") before anything else
        await interaction.response.defer(thinking=True)
        channel = interaction.channel
        if channel is None:
            channel = self.client.get_partial_messageable(interaction.channel_id or 0)
        files = [v for v in options.values() if isinstance(v, discord.Attachment)]
        typed = {k: (_attachment(v) if isinstance(v, discord.Attachment) else v) for k, v in options.items()}
        permissions = getattr(interaction, "permissions", None)
        msg = Incoming(
            platform="discord",
            tenant=tenant_of(interaction.guild_id, interaction.user.id),
            channel=str(interaction.channel_id),
            user=str(interaction.user.id),
            user_name=interaction.user.display_name,
            text=" ".join(str(v) for v in options.values() if isinstance(v, (str, int, float))),
            id=str(interaction.id),
            thread=str(channel.id) if isinstance(channel, discord.Thread) else None,
            is_dm=interaction.guild_id is None,
            from_bot=interaction.user.bot,
            command=name,
            options=typed,
            is_admin=bool(permissions and permissions.manage_guild),
            attachments=tuple(_attachment(a) for a in files),
            dedupe_key=f"discord:interaction:{interaction.id}",
            ts=interaction.created_at,
            raw=interaction,
        )
        conv = InteractionConversation(self, interaction, channel, files={a.url: a for a in files})
        self._track(self._answer_interaction(msg, conv))

    def _press(self, interaction: discord.Interaction, action: str, answer: str, reason: str | None = None) -> Press:
        return Press(action=action, answer=answer, platform="discord",
                     tenant=tenant_of(interaction.guild_id, interaction.user.id), channel=str(interaction.channel_id),
                     user=str(interaction.user.id), reason=reason, raw=interaction)

    def _press_conversation(self, interaction: discord.Interaction) -> ComponentConversation:
        channel = interaction.channel or self.client.get_partial_messageable(interaction.channel_id or 0)
        return ComponentConversation(self, interaction, channel)

    async def _on_control(self, interaction: discord.Interaction, action: str, answer: str) -> None:
        # within Discord's 3 s: a 👎 answers with its modal, the others with a deferred update
        if action == BAD:
            await interaction.response.send_modal(ReasonModal(answer, self._on_reason))
        else:
            await interaction.response.defer()
        self._submit(self._press(interaction, action, answer), self._press_conversation(interaction))

    def _on_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        """A 🛑 (or ⏹) added to one of the bot's answers by its asker stops it, like the
        Stop button; any other reaction, or one from someone else, does nothing, quietly."""
        bot_id = self.bot_id
        if str(payload.emoji) not in STOP_EMOJI or payload.user_id == bot_id:
            return
        if payload.message_author_id is not None and payload.message_author_id != bot_id:
            return
        press = Press(action=STOP, answer="", platform="discord", tenant=tenant_of(payload.guild_id, payload.user_id),
                      channel=str(payload.channel_id), user=str(payload.user_id), message=str(payload.message_id),
                      quiet=True, raw=payload)
        self._submit(press, self.conversation(tenant=press.tenant, channel=press.channel))

    async def _on_reason(self, interaction: discord.Interaction, answer: str, reason: str) -> None:
        await interaction.response.defer()
        self._submit(self._press(interaction, REASON, answer, reason), self._press_conversation(interaction))

    async def _answer_interaction(self, msg: Incoming, conv: InteractionConversation) -> None:
        assert self._dispatch is not None
        try:
            await self._dispatch(msg, conv)
        finally:
            await conv.finish()


def _log_end(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the Discord gateway connection ended", exc_info=task.exception())


def _attachment(a: discord.Attachment) -> Attachment:
    return Attachment(name=a.filename, ref=a.url, size=a.size, mimetype=a.content_type)


def _manages_guild(author) -> bool:
    permissions = getattr(author, "guild_permissions", None)  # a Member; a DM's User has none
    return bool(permissions and permissions.manage_guild)


def tenant_of(guild_id: int | None, user_id: int) -> str:
    """The guild; a DM belongs to its user alone (one shared "dm" tenant would let every
    user who DMs the bot read the documents another user added there)."""
    return str(guild_id) if guild_id else f"dm:{user_id}"
