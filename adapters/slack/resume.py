"""Answers a stopped process left cut off, on Slack (the core's `Resumable`, used by
`bot.core.recovery`): a conversation to answer the message again, and the note that
closes the half-written message.

A native stream is closed with `chat.stopStream`, whose `markdown_text` is appended to
the streamed text; a stream Slack finalized itself (`message_not_in_streaming_state`)
and a posted message get the note by `chat.update`, after its current text is read back
(`chat.update` replaces the text; the Stop button goes with the old blocks)."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from adapters.slack.controls import message_blocks
from adapters.slack.mrkdwn import to_mrkdwn
from bot.core.messages import Incoming

if TYPE_CHECKING:
    from adapters.slack.adapter import SlackAdapter

log = logging.getLogger(__name__)

SCAN_PAGES = 20  # conversations.replies pages read at most to find the message


def _error(exc: SlackApiError) -> str:
    return (exc.response.get("error", "") if exc.response is not None else "") or ""


async def close_cut(adapter: "SlackAdapter", msg: Incoming, ts: str, *, native: bool, note: str) -> None:
    client = adapter.client_for(msg.tenant)
    budget = adapter.workspace(msg.tenant).budget
    if native:
        await budget.take("chat.stopStream")
        try:
            await client.chat_stopStream(channel=msg.channel, ts=ts, markdown_text=f"\n\n{note}")
            return
        except SlackApiError as exc:
            if _error(exc) == "message_not_found":
                return
            if _error(exc) != "message_not_in_streaming_state":
                raise
    found = await _message(client, msg.channel, ts, thread=msg.thread)
    if found is None:
        log.info("the cut-off message %s is gone; nothing to close", ts)
        return
    kwargs: dict = {}
    markdown = next((b.get("text") for b in found.get("blocks") or [] if b.get("type") == "markdown"), None)
    if markdown is not None:
        kwargs["blocks"] = message_blocks(f"{markdown}\n\n{note}", None)
    elif found.get("blocks"):
        kwargs["blocks"] = []  # drop buttons (Stop) drawn under a plain message
    await budget.take("chat.update")
    await client.chat_update(channel=msg.channel, ts=ts, text=f"{found.get('text') or ''}\n\n{to_mrkdwn(note)}",
                             **kwargs)


async def _message(client, channel: str, ts: str, *, thread: str | None) -> dict | None:
    """The message `ts` as Slack has it now (None: deleted)."""
    window = {"latest": ts, "oldest": ts, "inclusive": True}
    try:
        if not thread or thread == ts:
            resp = await client.conversations_history(channel=channel, limit=1, **window)
            return next((m for m in resp.get("messages") or [] if m.get("ts") == ts), None)
        cursor = None
        for _ in range(SCAN_PAGES):
            resp = await client.conversations_replies(channel=channel, ts=thread, limit=200, cursor=cursor, **window)
            found = next((m for m in resp.get("messages") or [] if m.get("ts") == ts), None)
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if found is not None or not cursor:
                return found
    except SlackApiError as exc:
        log.info("could not read back message %s: %s", ts, _error(exc))
    return None
