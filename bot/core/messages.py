"""The core's message model: what every adapter turns platform events into.

Ids (tenant, channel, thread, message) are opaque strings: only the adapter that made
them knows how to read them.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that came with a message; `ref` is what the adapter needs to download it."""

    name: str
    ref: str
    size: int | None = None
    mimetype: str | None = None


@dataclass(frozen=True, slots=True)
class Incoming:
    """One platform event, normalized. Built by adapters, read by the router and patterns."""

    platform: str  # "console", "slack", "discord", "cli", "scheduler"
    tenant: str  # Slack workspace, Discord guild, "console"
    channel: str
    user: str
    text: str  # the bot's own mention is already removed
    id: str = ""
    thread: str | None = None
    user_name: str | None = None
    mentioned: bool = False  # the bot was addressed by name
    is_dm: bool = False
    in_bot_thread: bool = False  # a follow-up in a thread the bot takes part in
    from_self: bool = False
    from_bot: bool = False
    command: str | None = None  # slash command name without the slash, lower case ("kb", or "kb add")
    options: Mapping[str, Any] | None = field(default=None, compare=False)  # typed command options, where the platform has them;
    # None: the router parses them out of `text` (Slack, the console)
    is_admin: bool = False  # a workspace admin/owner (Slack), Manage Server (Discord), the operator (console)
    unattended: bool = False  # nobody waits for the answer (a scheduled run): failures are logged, not posted
    attachments: tuple[Attachment, ...] = ()
    dedupe_key: str | None = None  # platform delivery id: the same key is handled once
    timezone: str | None = None  # IANA name of the user's/workspace's zone, where the platform tells it
    ts: datetime = field(default_factory=utcnow)
    raw: Any = field(default=None, compare=False, repr=False)

    @property
    def conversation_key(self) -> tuple[str, str, str, str]:
        """Messages with the same key are answered one at a time, in order: one thread
        (or reply chain), or one DM; a message outside any thread in a channel starts a
        conversation of its own (its answer opens a thread under it), so a busy channel
        is answered in parallel."""
        if self.thread:
            return (self.platform, self.tenant, self.channel, self.thread)
        if self.is_dm or not self.id:
            return (self.platform, self.tenant, self.channel, "")
        return (self.platform, self.tenant, self.channel, self.id)


@dataclass(frozen=True, slots=True)
class HistoryItem:
    """A message read back from a channel or thread, oldest first in lists."""

    user: str
    text: str
    ts: datetime
    is_bot: bool = False
    id: str = ""
    thread: str | None = None
    reply_count: int = 0
    link: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """What a handler may return when plain text is not enough."""

    text: str = ""
    ephemeral: bool = False  # only the asking user sees it, where the platform can do that


@dataclass(frozen=True, slots=True)
class CallInfo:
    """Who a model call is for; every ledger row carries it."""

    pattern: str
    platform: str = ""
    tenant: str = ""
    channel: str = ""
    user: str = ""

    @classmethod
    def for_message(cls, pattern: str, msg: Incoming) -> "CallInfo":
        return cls(pattern, msg.platform, msg.tenant, msg.channel, msg.user)
