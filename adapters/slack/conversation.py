"""Replies, history and files for one Slack message (the core's `Conversation`).

Posts go in the message's thread (channels) or in place (DMs). Command replies that are
meant for the asker alone go through the command's `response_url` (ephemeral). Answers
stream with Slack's chat streaming methods when the workspace allows them; otherwise
`open_stream` raises `StreamUnsupported` and the core posts and edits (`chat.update`).
Text is Markdown from the patterns: native streams take it as is (`markdown_text`),
`text` fields get it converted to mrkdwn here.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack.controls import STOP_HINT, actions_block, message_blocks
from adapters.slack.mrkdwn import to_mrkdwn
from adapters.slack.normalize import clean_text
from adapters.slack.pacing import AdaptiveLimits
from bot.core.answers import Controls
from bot.core.errors import UserError
from bot.core.messages import Attachment, HistoryItem
from bot.core.surface import MessageGone, StreamUnsupported, WholeAnswerOnly

if TYPE_CHECKING:
    from adapters.slack.adapter import SlackAdapter

log = logging.getLogger(__name__)

MAX_CHARS = 3_500  # Slack rejects `text` from ~4,000 chars (msg_too_long); mrkdwn escaping adds a little
PAGE = 200  # conversations.* page size (Slack's recommended maximum)
HISTORY_SCAN = 2_000  # messages read at most to find the newest of a long thread
# errors that mean "this workspace/app cannot use chat streaming at all"
_NO_STREAM = {"not_allowed", "not_allowed_token_type", "feature_not_enabled", "unknown_method",
              "missing_scope", "team_not_allowed", "method_deprecated", "not_authed"}
# the message to edit or stream into no longer exists (deleted by a user)
_GONE = {"message_not_found", "cant_update_message", "message_not_in_streaming_state"}
# the bot may not post where it was asked: answer elsewhere (response_url or a DM), once
_CANNOT_POST = {"not_in_channel", "channel_not_found", "restricted_action", "is_archived",
                "restricted_action_read_only_channel", "restricted_action_thread_only_channel",
                "restricted_action_non_threadable_channel", "ekm_access_denied", "missing_scope"}
_WHY = {"not_in_channel": "I'm not a member of this channel (invite me with /invite {name})",
        "channel_not_found": "I can't see this channel (invite me with /invite {name})",
        "is_archived": "that channel is archived"}


def _error(exc: SlackApiError) -> str:
    return (exc.response.get("error", "") if exc.response is not None else "") or ""


class SlackConversation:
    def __init__(
        self,
        adapter: "SlackAdapter",
        *,
        team: str,
        channel: str,
        thread: str | None = None,
        user: str | None = None,
        response_url: str | None = None,
    ) -> None:
        self.adapter = adapter
        self.client = adapter.client_for(team)  # the workspace's own token when there are many
        self.team = team
        self.channel = channel
        self.thread = thread
        self.user = user
        self.response_url = response_url
        self.workspace = adapter.workspace(team)
        self.fallback: str | None = None  # why the channel refused a post, once it did
        self.post_channel = channel  # where posted messages live (a DM after a fallback)
        self._noted = False
        self.limits = AdaptiveLimits(
            self.workspace, max_chars=MAX_CHARS, base_interval=adapter.settings.update_interval
        )
        self.controls: Controls | None = None  # set by the renderer: buttons under the answer
        self._blocks = False  # an answer message here is drawn with blocks (text + buttons)

    async def for_question(self, msg) -> "SlackConversation":
        """Where an answer to `msg` goes, opened in this process (Regenerate of an answer
        another process wrote, or wrote before a restart)."""
        return SlackConversation(self.adapter, team=msg.tenant, channel=msg.channel, thread=msg.thread, user=msg.user)

    def _answer_blocks(self, text: str) -> list[dict] | None:
        """Blocks for an answer message when it has (or had) controls; None: plain text."""
        if self.controls is None and not self._blocks:
            return None
        self._blocks = True
        return message_blocks(text, self.controls)

    # --- writing --------------------------------------------------------------------

    async def post(self, text: str, *, ephemeral: bool = False) -> str:
        body = to_mrkdwn(text)
        if ephemeral and self.response_url:
            await self._respond(body, "ephemeral")
            return ""
        if ephemeral and self.user:
            await self.workspace.budget.take("chat.postEphemeral")
            await self.client.chat_postEphemeral(channel=self.channel, user=self.user, text=body, thread_ts=self.thread)
            return ""
        if self.fallback is not None:
            return await self._post_fallback(body)
        await self.workspace.budget.take("chat.postMessage", channel=self.channel)
        try:
            resp = await self.client.chat_postMessage(
                channel=self.channel, text=body, thread_ts=self.thread, unfurl_links=False, unfurl_media=False,
                blocks=self._answer_blocks(text),
            )
        except SlackApiError as exc:
            error = _error(exc)
            if error not in _CANNOT_POST or (not self.response_url and not self.user):
                raise
            # once per answer: the rest goes where it can, with a word on why
            log.info("cannot post in %s (%s); answering through %s", self.channel, error,
                     "the command's response_url" if self.response_url else "a DM")
            self.fallback = error
            if self.response_url:  # a response_url message cannot be edited: the whole answer, once
                raise WholeAnswerOnly(error) from None
            return await self._post_fallback(body)
        self.adapter.joined(self.channel, self.thread or resp["ts"])
        return resp["ts"]

    def _why(self) -> str:
        reason = _WHY.get(self.fallback or "", "I may not post in this channel")
        me = self.adapter.me
        return reason.format(name=f"<@{me.user_id}>" if me is not None else "@me")

    async def _post_fallback(self, body: str) -> str:
        """Where an answer goes when the channel refused it: the command's response_url
        (visible in the channel, no edits) or a DM to the asker (edits work there)."""
        if self.response_url:
            note = f"\n\n_({self._why()}, so this answer comes in one piece.)_"
            await self._respond(body + note if not self._noted else body, "in_channel")
            self._noted = True
            return ""
        if not self._noted:
            await self.workspace.budget.take("chat.postMessage", channel=self.user or "")
            await self.client.chat_postMessage(
                channel=self.user, text=f"I couldn't answer in <#{self.channel}>: {self._why()}. Here is my answer.")
            self._noted = True
        await self.workspace.budget.take("chat.postMessage", channel=self.user or "")
        resp = await self.client.chat_postMessage(channel=self.user, text=body, unfurl_links=False, unfurl_media=False)
        self.post_channel = resp["channel"]
        return resp["ts"]

    async def _respond(self, body: str, kind: str) -> None:
        resp = await AsyncWebhookClient(self.response_url).send(text=body, response_type=kind)
        if resp.status_code != 200:
            log.warning("response_url answered %s", resp.status_code)

    async def edit(self, message_id: str, text: str) -> None:
        await self.workspace.budget.take("chat.update")  # spent whether or not the edit succeeds
        try:
            await self.client.chat_update(channel=self.post_channel, ts=message_id, text=to_mrkdwn(text),
                                          blocks=self._answer_blocks(text))
        except SlackApiError as exc:
            if _error(exc) in _GONE:
                raise MessageGone(_error(exc)) from None
            raise

    async def open_stream(self, text: str = "") -> "SlackStream":
        """A native stream in this thread showing `text` from the start (one
        chat.startStream call); StreamUnsupported where Slack refuses it."""
        if not self.workspace.can_stream or not self.thread:
            raise StreamUnsupported("no native stream here")
        kwargs = {}
        if self.user and not self.channel.startswith("D"):  # required when streaming to channels
            kwargs = {"recipient_team_id": self.team, "recipient_user_id": self.user}
        if self.fallback is not None:
            raise StreamUnsupported(self.fallback)
        # Tier 2: when the workspace's starts are used up, this answer posts and edits instead
        if not await self.workspace.budget.take("chat.startStream", max_wait=1.0):
            raise StreamUnsupported("chat.startStream budget in use")
        try:
            resp = await self.client.chat_startStream(channel=self.channel, thread_ts=self.thread,
                                                      markdown_text=text or None, **kwargs)
        except SlackApiError as exc:
            error = _error(exc)
            if error in _NO_STREAM:
                log.info("workspace %s cannot stream (%s); answers there use post + edits", self.team, error)
                self.workspace.can_stream = False
            raise StreamUnsupported(error) from None
        self.adapter.joined(self.channel, self.thread)
        self.limits.native = True
        stream = SlackStream(self, resp["ts"])
        if self.controls is not None and self.controls.running:  # Stop, while no button can show
            stream.hint = asyncio.ensure_future(self._stop_hint(resp["ts"], on=True))
        return stream

    async def _stop_hint(self, ts: str, *, on: bool) -> bool:
        """Put the 🛑 under a streaming answer (clicking it adds the asker's own: Stop), or
        take it away when the answer ends. Cosmetic: skipped when the workspace's budget
        for it is used up, and a refusal (e.g. no reactions:write scope) is only logged."""
        method = "reactions.add" if on else "reactions.remove"
        if not await self.workspace.budget.take(method, max_wait=0.0):
            return False
        call = self.client.reactions_add if on else self.client.reactions_remove
        try:
            await call(channel=self.channel, timestamp=ts, name=STOP_HINT)
        except (SlackApiError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.info("%s refused in %s: %s", method, self.team,
                     _error(exc) if isinstance(exc, SlackApiError) else type(exc).__name__)
            return False
        return True

    async def set_status(self, text: str | None) -> None:
        """The assistant "is thinking…" status under the thread, where Slack offers it."""
        if not self.thread or not self.workspace.can_set_status:
            return
        if not await self.workspace.budget.take("assistant.threads.setStatus", max_wait=0.0):
            return  # cosmetic: skipped rather than waited for
        try:
            await self.client.assistant_threads_setStatus(channel_id=self.channel, thread_ts=self.thread, status=text or "")
        except SlackApiError as exc:
            log.info("assistant status unavailable in %s: %s", self.team, exc.response.get("error"))
            self.workspace.can_set_status = False

    # --- reading --------------------------------------------------------------------

    async def history(
        self, *, limit: int, since: datetime | None = None, scope: Literal["thread", "channel"] = "channel"
    ) -> list[HistoryItem]:
        """Newest `limit` messages (oldest first) of this thread or channel."""
        try:
            if scope == "thread" and self.thread:
                raw = await self._thread_messages(limit)
            else:
                raw = await self._channel_messages(limit, since)
        except SlackApiError as exc:  # e.g. a missing history scope: answer without context
            log.warning("reading %s history in %s failed: %s", scope, self.channel, exc.response.get("error"))
            raw = []
        names = {}
        for uid in {m.get("user") for m in raw if m.get("user") and not m.get("bot_id")}:
            names[uid] = await self.adapter.user_name(uid, self.team)
        items = [self._item(m, names) for m in raw]
        if since is not None:
            items = [it for it in items if it.ts >= since]
        return items[-limit:]

    async def _thread_messages(self, limit: int) -> list[dict]:
        # replies come oldest first: page through, keep the newest `limit`
        kept: deque[dict] = deque(maxlen=limit)
        cursor, seen = None, 0
        while seen < HISTORY_SCAN:
            resp = await self.client.conversations_replies(channel=self.channel, ts=self.thread, limit=PAGE, cursor=cursor)
            msgs = resp.get("messages") or []
            kept.extend(msgs)
            seen += len(msgs)
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor or not msgs:
                break
        return list(kept)

    async def _channel_messages(self, limit: int, since: datetime | None) -> list[dict]:
        # history comes newest first: page until `limit`, then reverse
        out: list[dict] = []
        cursor = None
        oldest = f"{since.timestamp():.6f}" if since else None
        while len(out) < limit:
            resp = await self.client.conversations_history(
                channel=self.channel, limit=min(PAGE, limit - len(out)), cursor=cursor, oldest=oldest
            )
            msgs = resp.get("messages") or []
            out.extend(msgs)
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor or not msgs:
                break
        return list(reversed(out[:limit]))

    def _item(self, m: dict, names: dict[str, str | None]) -> HistoryItem:
        me = self.adapter.identity(self.team)
        is_self = m.get("user") == me.user_id or (me.bot_id is not None and m.get("bot_id") == me.bot_id)
        ts = m.get("ts", "0")
        return HistoryItem(
            user=names.get(m.get("user")) or m.get("user") or m.get("username") or m.get("bot_id") or "unknown",
            text=clean_text(m.get("text") or "", me.user_id),
            ts=datetime.fromtimestamp(float(ts), tz=timezone.utc),
            is_bot=is_self,
            id=ts,
            thread=m.get("thread_ts"),
            reply_count=int(m.get("reply_count") or 0),
        )

    async def download(self, attachment: Attachment) -> bytes:
        """The file's bytes, fetched from `url_private` with the bot token; refused
        (UserError) when too large or not a file Slack hosts."""
        limit = self.adapter.settings.max_file_mb * 1024 * 1024
        try:
            info = (await self.client.files_info(file=attachment.ref))["file"]
        except SlackApiError:
            raise UserError(f"I couldn't read the file {attachment.name} (is it still shared here?).") from None
        name = info.get("name") or attachment.name
        if info.get("is_external") or info.get("mode") in ("external", "tombstone") or not info.get("url_private"):
            raise UserError(f"{name} is not a file uploaded to Slack (a link or deleted file), so I can't read it. Upload the file itself.")
        size = int(info.get("size") or 0)
        if size > limit:
            raise UserError(f"{name} is too large ({_mb(size)}); the limit is {_mb(limit)}.")
        url = info.get("url_private_download") or info["url_private"]
        headers = {"Authorization": f"Bearer {await self.adapter.token_for(self.team)}"}
        async with aiohttp.ClientSession() as session:
            async with session.get(url, headers=headers) as resp:
                if resp.status != 200:
                    raise UserError(f"Slack would not give me {name} (HTTP {resp.status}).")
                if resp.content_type == "text/html" and "html" not in (info.get("mimetype") or ""):
                    # Slack serves its login page when the token is not accepted
                    raise UserError(f"Slack would not give me {name}: the bot lacks the files:read permission.")
                data = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    data += chunk
                    if len(data) > limit:
                        raise UserError(f"{name} is too large (over {_mb(limit)}).")
        return bytes(data)


class SlackStream:
    """One message streamed with chat.appendStream / chat.stopStream (Markdown text).

    The last text goes with an append (Tier 4) and the stop carries none: a stop waits
    for the scarcer Tier 2 budget, and the text must not wait hidden with it."""

    def __init__(self, conv: SlackConversation, ts: str) -> None:
        self.conv = conv
        self.message_id = ts
        self.hint: asyncio.Future | None = None  # the 🛑 reaction being added under it (Stop)
        self._last_sent = False  # the final delta is shown; a retried finish must not repeat it

    async def _call(self, method: str, **kwargs) -> None:
        await self.conv.workspace.budget.take(method)
        call = getattr(self.conv.client, "chat_" + method.split(".")[1])
        try:
            await call(channel=self.conv.channel, ts=self.message_id, **kwargs)
        except SlackApiError as exc:
            if _error(exc) in _GONE:
                raise MessageGone(_error(exc)) from None
            raise

    async def append(self, delta: str) -> None:
        await self._call("chat.appendStream", markdown_text=delta)

    async def stop(self) -> None:
        controls = self.conv.controls  # the final buttons go at the bottom of the finished message
        try:
            await self._call("chat.stopStream", blocks=[actions_block(controls)] if controls else None)
        finally:
            self.conv.limits.native = False
            if self.hint is not None:  # the answer ended: its 🛑 goes (the buttons do the rest)
                hint, self.hint = self.hint, None
                self.conv.adapter.background(self._drop_hint(hint))

    async def _drop_hint(self, hint: asyncio.Future) -> None:
        try:
            if await hint:
                await self.conv._stop_hint(self.message_id, on=False)
        except Exception:
            log.warning("could not take the stop reaction away", exc_info=True)

    async def finish(self, delta: str) -> None:
        """The last text, then the end of the stream. Raises only if the text was not
        shown (the renderer then retries, or posts it as a new message)."""
        if delta and not self._last_sent:
            await self.append(delta)
            self._last_sent = True
        try:
            await self.stop()
        except MessageGone:
            raise
        except Exception:  # the text is shown; only the "streaming" state is left
            log.warning("chat.stopStream failed after the last text was shown", exc_info=True)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"
