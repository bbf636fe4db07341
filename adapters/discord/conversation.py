"""Where a Discord answer goes: a reply to a message, or an interaction's response.

Both read history and files the same way (`_ChannelReader`). Discord has no native
append-only stream, so the core renderer posts once and edits on a timer; `PacedLimits`
spaces those edits so every answer streaming in one channel together stays within the
channel's edit bucket (historically 5 per 5 s). discord.py's own bucket handling, driven by
the `X-RateLimit-*` headers, is the backstop: it waits out a 429 and retries, so an edit is
delayed, never dropped.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from datetime import datetime
from typing import TYPE_CHECKING, Literal

import discord

from adapters.discord.controls import controls_view
from bot.core.answers import Controls
from bot.core.errors import UserError
from bot.core.messages import Attachment, HistoryItem
from bot.core.priority import is_bulk
from bot.core.render import close_fence
from bot.core.surface import Limits, MessageGone

if TYPE_CHECKING:
    from adapters.discord.adapter import DiscordAdapter

log = logging.getLogger(__name__)

MAX_CHARS = 2_000  # Discord's message content limit
EDIT_BUDGET = (5, 5.0)  # edits per seconds per channel, shared by every answer streaming there
MAX_CHAIN = 50  # messages walked up a reply chain for context (one REST call each when not cached)
NO_PINGS = discord.AllowedMentions.none()  # model output never pings @everyone, roles or users


class ChannelPacer:
    """Spreads one channel's edit budget over the answers currently streaming in it.
    Bulk writers (digests, files being added: `bot.core.priority`) share one answer's
    part between them, so a busy bulk channel does not slow the answers there."""

    def __init__(self, *, budget: tuple[int, float] = EDIT_BUDGET, horizon: float = 4.0) -> None:
        self.per_edit = budget[1] / budget[0]
        self.horizon = horizon  # a conversation that wrote this recently counts as streaming
        self._writes: dict[str, dict[int, tuple[float, bool]]] = {}  # channel -> writer -> (when, bulk)

    def wrote(self, channel: str, who: object, *, bulk: bool | None = None) -> None:
        bulk = is_bulk() if bulk is None else bulk
        self._writes.setdefault(channel, {})[id(who)] = (time.monotonic(), bulk)

    def writers(self, channel: str) -> tuple[int, int]:
        """(interactive, bulk) writers streaming in the channel now."""
        now = time.monotonic()
        writers = self._writes.get(channel, {})
        for key in [k for k, (t, _) in writers.items() if now - t > self.horizon]:
            del writers[key]
        n_bulk = sum(1 for _, b in writers.values() if b)
        return len(writers) - n_bulk, n_bulk

    def active(self, channel: str) -> int:
        interactive, n_bulk = self.writers(channel)
        return max(1, interactive + (1 if n_bulk else 0))

    def interval(self, channel: str, *, bulk: bool | None = None) -> float:
        """Seconds between edits of one answer (one bulk writer with `bulk`, default: inside
        `bot.core.priority.bulk`); 20% headroom for the final edit, which is always sent."""
        bulk = is_bulk() if bulk is None else bulk
        interactive, n_bulk = self.writers(channel)
        shares = max(1, interactive + (1 if n_bulk or bulk else 0))
        if bulk:  # the bulk writers split one share between them
            return self.per_edit * 1.2 * shares * max(1, n_bulk)
        return self.per_edit * 1.2 * shares


class PacedLimits(Limits):
    """`Limits` whose update interval grows with the answers streaming in the channel."""

    def __init__(self, pacer: ChannelPacer, channel: str, *, max_chars: int = MAX_CHARS, max_updates: int = 60) -> None:
        # not the dataclass __init__: `update_interval` is computed, not stored
        self.pacer = pacer
        self.channel = channel
        self.max_chars = max_chars
        self.max_updates = max_updates

    @property  # type: ignore[override]
    def update_interval(self) -> float:
        return self.pacer.interval(self.channel)


def history_item(m: discord.Message, bot_id: int) -> HistoryItem:
    return HistoryItem(
        user=m.author.display_name,
        text=strip_mention(m.content, bot_id) if m.author.id != bot_id else m.content,
        ts=m.created_at,
        is_bot=m.author.id == bot_id,
        id=str(m.id),
        thread=str(m.reference.message_id) if m.reference and m.reference.message_id else None,
        link=m.jump_url,
    )


def with_note(text: str, note: str, *, limit: int = MAX_CHARS) -> str:
    """`text` ended by `note` in a paragraph of its own (a code block left open closed
    first), the text shortened if both would not fit in one message."""
    room = limit - len(note) - 8
    body = text.rstrip() if len(text) <= room else text[:room].rstrip() + "…"
    return f"{close_fence(body)}\n\n{note}" if body else note


def strip_mention(text: str, bot_id: int) -> str:
    stripped = re.sub(rf"<@!?{bot_id}>[,:]?", " ", text)
    return " ".join(stripped.split()) if stripped != text else text


class _ChannelReader:
    """History and attachments of one channel (or thread), for the patterns."""

    def __init__(self, adapter: "DiscordAdapter", channel: discord.abc.Messageable, *, origin: discord.Message | None = None,
                 files: dict[str, discord.Attachment] | None = None) -> None:
        self.adapter = adapter
        self.channel = channel
        self.origin = origin  # the message being answered, when there is one
        self.files = files or {}
        self.limits = PacedLimits(adapter.pacer, str(getattr(channel, "id", "")))
        self.controls: Controls | None = None  # set by the renderer: buttons under the answer
        self._drew = False  # an answer message here has (or had) buttons

    def _view(self) -> dict:
        """`view=` for a write of the answer message: its buttons, or None to remove them."""
        if self.controls is None and not self._drew:
            return {}
        self._drew = True
        return {"view": controls_view(self.adapter.control_button, self.controls) if self.controls else None}

    async def history(
        self, *, limit: int, since: datetime | None = None, scope: Literal["thread", "channel"] = "channel"
    ) -> list[HistoryItem]:
        """Oldest first. In a thread, the thread; for a reply, its reply chain; else the channel."""
        bot_id = self.adapter.bot_id
        if scope == "thread" and self.origin is not None and not isinstance(self.channel, discord.Thread) and self.origin.reference:
            chain = await self._reply_chain(self.origin, min(limit, MAX_CHAIN))
            items = [history_item(m, bot_id) for m in chain if since is None or m.created_at >= since]
            return items
        newest_first = []
        async for m in self.channel.history(limit=limit):  # newest first, paging backwards
            if since is not None and m.created_at < since:
                break
            if m.type in _CHAT_TYPES:
                newest_first.append(m)
        return [history_item(m, bot_id) for m in reversed(newest_first)]

    async def _reply_chain(self, message: discord.Message, limit: int) -> list[discord.Message]:
        chain = [message]
        current = message
        while current.reference and current.reference.message_id and len(chain) < limit:
            ref = current.reference
            parent = ref.resolved if isinstance(ref.resolved, discord.Message) else ref.cached_message
            if parent is None:
                try:
                    parent = await self.channel.fetch_message(ref.message_id)
                except discord.HTTPException:
                    break  # deleted or not visible: the chain ends here
            chain.append(parent)
            current = parent
        return list(reversed(chain))

    async def download(self, attachment: Attachment) -> bytes:
        limit = self.adapter.max_file_bytes
        if attachment.size is not None and attachment.size > limit:
            raise UserError(
                f"{attachment.name} is {_mb(attachment.size)}; I accept files up to {_mb(limit)}. "
                "Split it, or send a smaller excerpt."
            )
        found = self.files.get(attachment.ref)
        if found is None:
            raise UserError(f"I could not find {attachment.name} on that message any more.")
        try:
            data = await found.read()
        except discord.HTTPException:
            log.warning("downloading attachment %s failed", attachment.name, exc_info=True)
            raise UserError(f"I could not download {attachment.name} from Discord; please try again.") from None
        if len(data) > limit:
            raise UserError(f"{attachment.name} is {_mb(len(data))}; I accept files up to {_mb(limit)}.")
        return data


_CHAT_TYPES = (discord.MessageType.default, discord.MessageType.reply, discord.MessageType.chat_input_command)


def _mb(n: int) -> str:
    return f"{n / 1_048_576:.1f} MB"


class MessageConversation(_ChannelReader):
    """Answers to a message: replies to it (in DMs and threads, plain posts in place)."""

    def __init__(self, adapter: "DiscordAdapter", channel: discord.abc.Messageable, *, origin: discord.Message | None = None,
                 files: dict[str, discord.Attachment] | None = None) -> None:
        super().__init__(adapter, channel, origin=origin, files=files)
        self._typing: asyncio.Task | None = None
        self._dm: discord.DMChannel | None = None  # where the answer goes when the channel refused it

    async def post(self, text: str, *, ephemeral: bool = False) -> str:
        # Discord has no ephemeral channel messages: a private note is posted like any reply
        await self.set_status(None)
        if self._dm is not None:
            return await self._post_dm(text)
        reply_to = self.origin if self.origin is not None and self.origin.guild is not None else None
        self.adapter.pacer.wrote(self.limits.channel, self)  # the channel's budget, spent even if refused
        try:
            sent = await self.channel.send(
                text,
                reference=reply_to.to_reference(fail_if_not_exists=False) if reply_to else None,
                mention_author=False,
                allowed_mentions=NO_PINGS,
                **({} if ephemeral else {k: v for k, v in self._view().items() if v is not None}),
            )
        except discord.Forbidden as exc:  # 50013 Missing Permissions / 50001 Missing Access
            if self.origin is None or self.origin.guild is None:
                raise
            log.info("may not post in channel %s (%s); answering by DM", self.limits.channel, exc.code)
            self._dm = await self.origin.author.create_dm()
            note = (f"I couldn't answer in {getattr(self.channel, 'mention', 'that channel')}: I'm missing "
                    "the permission to post there (an admin can give me Send Messages). Here is my answer.")
            await self._dm.send(note, allowed_mentions=NO_PINGS)
            return await self._post_dm(text)
        return str(sent.id)

    async def _post_dm(self, text: str) -> str:
        sent = await self._dm.send(text, allowed_mentions=NO_PINGS,
                                   **{k: v for k, v in self._view().items() if v is not None})
        return str(sent.id)

    async def edit(self, message_id: str, text: str) -> None:
        target = self._dm if self._dm is not None else self.channel
        if self._dm is None:
            self.adapter.pacer.wrote(self.limits.channel, self)
        try:
            await target.get_partial_message(int(message_id)).edit(content=text, allowed_mentions=NO_PINGS,
                                                                   **self._view())
        except discord.NotFound as exc:  # 10008 Unknown Message: deleted under the answer
            raise MessageGone(str(exc.code)) from None

    async def set_status(self, text: str | None) -> None:
        """The typing indicator stands in for "thinking" (Discord shows it ~10 s per call)."""
        if text and self._typing is None:
            self._typing = asyncio.create_task(self._keep_typing())
        elif not text and self._typing is not None:
            self._typing.cancel()
            self._typing = None

    async def _keep_typing(self) -> None:
        while True:
            try:
                await self.channel.typing()
            except discord.HTTPException:
                log.info("typing indicator refused", exc_info=True)
                return
            await asyncio.sleep(8)


class InteractionConversation(_ChannelReader):
    """Answers to an application command that was deferred: the first post fills the
    "thinking…" response, later ones are follow-ups. An ephemeral first post replaces the
    public placeholder with a private follow-up."""

    def __init__(self, adapter: "DiscordAdapter", interaction: discord.Interaction, channel: discord.abc.Messageable,
                 *, files: dict[str, discord.Attachment] | None = None) -> None:
        super().__init__(adapter, channel, files=files)
        self.interaction = interaction
        self._used_original = False
        self._sent: dict[str, discord.InteractionMessage | discord.WebhookMessage] = {}

    async def post(self, text: str, *, ephemeral: bool = False) -> str:
        followup = self.interaction.followup
        if not self._used_original:
            self._used_original = True
            if ephemeral:
                await self.interaction.delete_original_response()
                sent = await followup.send(text, ephemeral=True, wait=True, allowed_mentions=NO_PINGS)
            else:
                sent = await self.interaction.edit_original_response(content=text, allowed_mentions=NO_PINGS,
                                                                     **self._view())
        else:
            view = {} if ephemeral else {k: v for k, v in self._view().items() if v is not None}
            sent = await followup.send(text, ephemeral=ephemeral, wait=True, allowed_mentions=NO_PINGS, **view)
        self._sent[str(sent.id)] = sent
        return str(sent.id)

    async def edit(self, message_id: str, text: str) -> None:
        try:
            await self._sent[message_id].edit(content=text, allowed_mentions=NO_PINGS, **self._view())
        except discord.NotFound as exc:  # deleted under the answer (or the interaction expired)
            raise MessageGone(str(exc.code)) from None

    async def finish(self) -> None:
        """A handler that answered nothing must not leave "thinking…" up forever."""
        if not self._used_original:
            self._used_original = True
            try:
                await self.interaction.delete_original_response()
            except discord.HTTPException:
                log.info("could not remove an unanswered interaction's placeholder", exc_info=True)


class ChannelConversation(MessageConversation):
    """A channel or thread addressed without an incoming message (scheduled posts)."""


class ComponentConversation(_ChannelReader):
    """Where notes about a pressed button go: to the presser only (the interaction was
    already answered, by a deferred update or a modal)."""

    def __init__(self, adapter: "DiscordAdapter", interaction: discord.Interaction, channel: discord.abc.Messageable) -> None:
        super().__init__(adapter, channel)
        self.interaction = interaction

    async def for_question(self, msg) -> MessageConversation:
        """Where an answer to `msg` goes, opened in this process (Regenerate of an answer
        another process wrote, or wrote before a restart): a reply to the question when
        it can still be read, else a post in its channel."""
        client = self.adapter.client
        cid = int(msg.channel)
        channel = client.get_channel(cid) or client.get_partial_messageable(cid)
        if msg.command is None and msg.id:
            try:
                origin = await channel.fetch_message(int(msg.id))
            except (discord.HTTPException, ValueError):
                log.info("the question of a regenerated answer is gone; answering in its channel")
            else:
                return MessageConversation(self.adapter, origin.channel, origin=origin,
                                           files={a.url: a for a in origin.attachments})
        return ChannelConversation(self.adapter, channel)

    async def post(self, text: str, *, ephemeral: bool = False) -> str:
        sent = await self.interaction.followup.send(text, ephemeral=True, wait=True, allowed_mentions=NO_PINGS)
        return str(sent.id)

    async def edit(self, message_id: str, text: str) -> None:
        await self.interaction.followup.edit_message(int(message_id), content=text, allowed_mentions=NO_PINGS)
