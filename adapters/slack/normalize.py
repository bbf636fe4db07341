"""Slack payloads → the core's `Incoming` (a dict dispatch on the payload type).

Ids stay Slack's: tenant = team id, channel = channel id, thread = the thread's root
`ts`. A channel mention is answered in its thread (its own `ts` when it starts one); a DM
is answered in place. The router drops own/bot messages and repeated deliveries: this
module only sets `from_self`, `from_bot` and `dedupe_key` (Slack's `event_id`, the same
on every retry).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from bot.core.messages import Attachment, Incoming

# message subtypes that are someone saying something (others are edits, joins, ...)
_SPOKEN = {None, "file_share", "thread_broadcast", "me_message", "bot_message"}
SUMMARIZE_SHORTCUT = "summarize_thread"  # callback_id of the message shortcut in the manifest
_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


@dataclass(frozen=True)
class Identity:
    """Who the bot is in the workspace (from auth.test)."""

    user_id: str
    bot_id: str | None
    team_id: str


def clean_text(text: str, bot_user: str) -> str:
    """Slack text with the bot's own mention removed and entities unescaped."""
    text = re.sub(rf"<@{re.escape(bot_user)}(?:\|[^>]*)?>[,:]?", " ", text)
    text = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r"\2 (\1)", text)
    text = re.sub(r"<(https?://[^>]+)>", r"\1", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def _ts(ts: str | None) -> datetime:
    try:
        return datetime.fromtimestamp(float(ts or 0), tz=timezone.utc)
    except ValueError:
        return datetime.now(timezone.utc)


def _attachments(event: dict) -> tuple[Attachment, ...]:
    return tuple(
        Attachment(name=f.get("name") or f.get("title") or f.get("id", "file"), ref=f["id"],
                   size=f.get("size"), mimetype=f.get("mimetype"))
        for f in event.get("files") or [] if f.get("id")
    )


def from_event(body: dict, me: Identity, *, in_bot_thread: Callable[[str, str], bool]) -> Incoming | None:
    """An Events API callback as an `Incoming`; None for events that are not messages
    someone said (edits, deletions, joins) and for channel messages that mention the
    bot (those also arrive as `app_mention`, which is the one answered)."""
    event = body.get("event") or {}
    handler = _EVENTS.get(event.get("type", ""))
    if handler is None or event.get("subtype") not in _SPOKEN or not event.get("channel"):
        return None
    return handler(body, event, me, in_bot_thread)


def _common(body: dict, event: dict, me: Identity) -> dict:
    user = event.get("user") or event.get("bot_id") or ""
    own = user == me.user_id or (me.bot_id is not None and event.get("bot_id") == me.bot_id)
    return dict(
        platform="slack",
        tenant=body.get("team_id") or event.get("team") or me.team_id,
        channel=event["channel"],
        user=user,
        text=clean_text(event.get("text") or "", me.user_id),
        id=event.get("ts", ""),
        from_self=own,
        from_bot=not own and (bool(event.get("bot_id")) or event.get("subtype") == "bot_message"),
        attachments=_attachments(event),
        dedupe_key=f"slack:{body['event_id']}" if body.get("event_id") else None,
        ts=_ts(event.get("ts")),
        raw=body,
    )


def _app_mention(body, event, me, in_bot_thread) -> Incoming:
    return Incoming(**_common(body, event, me), thread=event.get("thread_ts") or event.get("ts"), mentioned=True)


def _message(body, event, me, in_bot_thread) -> Incoming | None:
    fields = _common(body, event, me)
    thread = event.get("thread_ts")
    if event.get("channel_type") == "im":
        return Incoming(**fields, thread=thread, is_dm=True)
    if f"<@{me.user_id}" in (event.get("text") or ""):
        return None  # delivered again as app_mention
    joined = bool(thread) and (event.get("parent_user_id") == me.user_id or in_bot_thread(event["channel"], thread))
    return Incoming(**fields, thread=thread, in_bot_thread=joined)


_EVENTS = {"app_mention": _app_mention, "message": _message}


def from_command(payload: dict) -> Incoming:
    """A slash command (form fields, as Slack posts them) as an `Incoming`."""
    return Incoming(
        platform="slack",
        tenant=payload.get("team_id", ""),
        channel=payload.get("channel_id", ""),
        user=payload.get("user_id", ""),
        user_name=payload.get("user_name"),
        text=(payload.get("text") or "").strip(),
        command=(payload.get("command") or "").lstrip("/").lower(),
        is_dm=payload.get("channel_name") == "directmessage" or payload.get("channel_id", "").startswith("D"),
        dedupe_key=f"slack:cmd:{payload['trigger_id']}" if payload.get("trigger_id") else None,
        raw=payload,
    )


def from_message_shortcut(payload: dict) -> Incoming | None:
    """The "Summarize thread" message shortcut as a `/summarize` of the thread the chosen
    message is in (or starts); None for a payload without a channel or message."""
    message = payload.get("message") or {}
    channel = (payload.get("channel") or {}).get("id", "")
    root = message.get("thread_ts") or message.get("ts")
    if not channel or not root:
        return None
    user = (payload.get("user") or {}).get("id", "")
    return Incoming(
        platform="slack",
        tenant=(payload.get("team") or {}).get("id", ""),
        channel=channel,
        user=user,
        text="",
        thread=root,
        command="summarize",
        is_dm=channel.startswith("D"),
        dedupe_key=f"slack:shortcut:{payload['trigger_id']}" if payload.get("trigger_id") else None,
        raw=payload,
    )
