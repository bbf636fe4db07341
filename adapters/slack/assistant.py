"""Slack's assistant panel (Agents & AI Apps) through Bolt's `AsyncAssistant` middleware.

- `assistant_thread_started`: a greeting and the suggested prompts
  (`assistant.threads.setSuggestedPrompts`, SLACK_ASSISTANT_PROMPTS);
- `assistant_thread_context_changed`: the channel the user is viewing, kept per thread
  (`ThreadContexts`, an `AsyncAssistantThreadContextStore`) where every process finds it,
  also after a restart: in the greeting's message metadata, as Bolt's default store does;
- a user message in the thread: titled from the first question
  (`assistant.threads.setTitle`), then answered like any DM (status while thinking,
  streamed). "Summarize this channel", "What's new … today" and "What is in the knowledge
  base" become `/summarize`, `/summarize 24h` and `/kb list`; a message starting with
  `/command` is that command. The summaries read the channel being viewed, and the answer
  goes into the panel's thread.
"""
from __future__ import annotations

import logging
import re
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from slack_bolt.context.assistant.thread_context import AssistantThreadContext
from slack_bolt.context.assistant.thread_context_store.async_store import AsyncAssistantThreadContextStore
from slack_bolt.middleware.assistant.async_assistant import AsyncAssistant
from slack_sdk.errors import SlackApiError

from adapters.slack.conversation import SlackConversation
from adapters.slack.normalize import from_event
from bot.core.errors import UserError
from bot.core.messages import Incoming

if TYPE_CHECKING:
    from adapters.slack.adapter import SlackAdapter

log = logging.getLogger(__name__)

KEEP = 10_000  # assistant threads remembered in memory (context channel, titled)
METADATA_TYPE = "assistant_thread_context"  # Bolt's: the greeting's metadata holding the context
READ_REPLIES = 10  # the first messages of a thread read back: the greeting, the first question
MAX_TITLE = 80
_I = re.IGNORECASE
SUMMARIZE_CHANNEL = re.compile(r"^\s*(please\s+)?(summari[sz]e|recap|tl;?dr)\s+(this|the)\s+channel\b", _I)
NEW_TODAY = re.compile(r"^\s*what('?s| is| has)\s+(new|happened)\b.*\btoday\b", _I)
KB_CONTENTS = re.compile(r"^\s*what('?s| is)\s+in\s+the\s+knowledge[\s-]?base\b", _I)
SLASH = re.compile(r"^\s*/([a-z][\w-]*)(?:\s+(.*))?$", _I | re.DOTALL)


def parse_prompts(spec: str) -> list[dict]:
    """`title => message; …` as Slack's suggested prompts (at most 4)."""
    prompts = []
    for part in spec.split(";"):
        title, sep, message = part.partition("=>")
        title, message = title.strip(), (message.strip() if sep else title.strip())
        if title:
            prompts.append({"title": title[:75], "message": message[:2000]})
    return prompts[:4]


def panel_command(text: str) -> tuple[str, str, bool] | None:
    """The command a panel message stands for, its text, and whether it is about the
    channel being viewed; None: a question for the usual answerers."""
    if SUMMARIZE_CHANNEL.match(text):
        return "summarize", "", True
    if NEW_TODAY.match(text):
        return "summarize", "24h", True
    if KB_CONTENTS.match(text):
        return "kb", "list", False
    m = SLASH.match(text)
    if m:
        return m.group(1).lower(), (m.group(2) or "").strip(), False
    return None


NOT_VIEWING = ("Open me from the channel you want summarized: I summarize the channel you are viewing "
               "next to this panel.")


class ThreadContexts(AsyncAssistantThreadContextStore):
    """The channel each assistant thread's user is viewing, and whether the thread has had
    its first question (its title), shared by every process and kept across restarts the
    way Bolt's default store keeps it (`DefaultAsyncAssistantThreadContextStore`): in the
    metadata of the bot's first reply in the thread (the greeting, posted by Bolt's `say`
    with that metadata), read back with `conversations.replies(include_all_metadata)`.
    A memory in front of it saves the API calls for threads this process has seen.

    Unlike Bolt's default it works for many workspaces (`team`: the workspace's client and
    bot user) and keeps the greeting's ts, so a context change costs one chat.update."""

    def __init__(self, adapter: "SlackAdapter | None" = None, keep: int = KEEP) -> None:
        self.adapter = adapter
        self.keep = keep
        self._threads: OrderedDict[tuple[str, str], ThreadState] = OrderedDict()

    def _remember(self, channel_id: str, thread_ts: str, state: "ThreadState") -> "ThreadState":
        self._threads[(channel_id, thread_ts)] = state
        self._threads.move_to_end((channel_id, thread_ts))
        while len(self._threads) > self.keep:
            self._threads.popitem(last=False)
        return state

    def started(self, channel_id: str, thread_ts: str, context: dict) -> None:
        """A new assistant thread (its greeting is on its way)."""
        self._remember(channel_id, thread_ts, ThreadState(dict(context)))

    async def greeted(self, channel_id: str, thread_ts: str, greeting: dict, posted: dict, *, team: str = "") -> None:
        """The greeting was posted with `posted` in its metadata; if the user switched
        channels meanwhile, the newer context goes there too."""
        state = self._threads.get((channel_id, thread_ts)) or self._remember(channel_id, thread_ts, ThreadState(dict(posted)))
        state.greeting = greeting
        if state.context != dict(posted):
            await self._write(channel_id, state, team)

    async def save(self, *, channel_id: str, thread_ts: str, context: dict[str, str], team: str = "") -> None:
        state = self._threads.get((channel_id, thread_ts))
        if state is None:
            state = await self._read(channel_id, thread_ts, team) or ThreadState({})
        state.context = dict(context)
        self._remember(channel_id, thread_ts, state)
        if state.greeting is not None and self.adapter is not None:  # where the other processes read it
            await self._write(channel_id, state, team)

    async def find(self, *, channel_id: str, thread_ts: str, team: str = "") -> AssistantThreadContext | None:
        """The context as Slack keeps it now (another process may have changed it since
        this one last heard), else as this process last knew it."""
        fresh = await self._read(channel_id, thread_ts, team)
        state = self._threads.get((channel_id, thread_ts))
        if fresh is not None:
            if state is None:
                state = self._remember(channel_id, thread_ts, fresh)
            state.context, state.greeting = fresh.context, fresh.greeting
        return AssistantThreadContext(state.context) if state is not None and state.context else None

    async def thread(self, *, channel_id: str, thread_ts: str, team: str = "", before: str = "") -> "ThreadState | None":
        """What is known of an assistant thread (None: not one the bot greeted). `before`:
        the ts of the message being answered (an earlier question means it is titled)."""
        state = self._threads.get((channel_id, thread_ts))
        if state is not None and state.titled:
            return state
        # unknown here, or not titled as far as this process knows: another process may
        # have answered its first question (read once; then this process knows too)
        read = await self._read(channel_id, thread_ts, team, before=before)
        if read is None:
            return state
        if state is None:
            return self._remember(channel_id, thread_ts, read)
        state.titled, state.greeting = read.titled, read.greeting
        return state

    def known(self, channel_id: str, thread_ts: str) -> bool:
        return (channel_id, thread_ts) in self._threads

    async def _read(self, channel_id: str, thread_ts: str, team: str, *, before: str = "") -> "ThreadState | None":
        """The thread's state from Slack: the greeting's metadata, earlier questions."""
        if self.adapter is None:
            return None
        me = self.adapter.identity(team).user_id
        messages: list[dict] = []
        cursor = None
        try:
            while len(messages) < READ_REPLIES:  # Slack may return fewer than `limit` a page
                resp = await self.adapter.client_for(team).conversations_replies(
                    channel=channel_id, ts=thread_ts, include_all_metadata=True,
                    limit=READ_REPLIES - len(messages), cursor=cursor)
                messages += resp.get("messages") or []
                cursor = (resp.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except SlackApiError as exc:
            log.info("could not read assistant thread %s: %s", thread_ts, exc.response.get("error"))
            return None
        greeting = next((m for m in messages if m.get("subtype") is None and m.get("user") == me
                         and (m.get("metadata") or {}).get("event_type") == METADATA_TYPE), None)
        if greeting is None:
            return None
        asked = any(m.get("user") not in (None, me) and not m.get("bot_id") and m.get("ts") != thread_ts
                    and (not before or float(m.get("ts") or 0) < float(before)) for m in messages)
        return ThreadState(dict(greeting["metadata"].get("event_payload") or {}), greeting=greeting, titled=asked)

    async def _write(self, channel_id: str, state: "ThreadState", team: str) -> None:
        greeting = state.greeting or {}
        try:
            await self.adapter.workspace(team).budget.take("chat.update")
            await self.adapter.client_for(team).chat_update(
                channel=channel_id, ts=greeting["ts"], text=greeting.get("text") or "", blocks=greeting.get("blocks"),
                metadata={"event_type": METADATA_TYPE, "event_payload": state.context})
        except SlackApiError as exc:  # this process still knows; another may use the older context
            log.info("could not keep an assistant thread's context in Slack: %s", exc.response.get("error"))


@dataclass
class ThreadState:
    context: dict  # channel_id / team_id / enterprise_id of the channel being viewed
    greeting: dict | None = None  # the bot's first reply (ts, text, blocks): where the context is kept
    titled: bool = False  # its first question was asked (and titled the thread)


class PanelConversation(SlackConversation):
    """A panel thread: only its user sees it, so a reply "for the asker only" is a plain
    post in the thread (an ephemeral message there would vanish on reload)."""

    async def post(self, text: str, *, ephemeral: bool = False) -> str:
        return await super().post(text)


class ViewingConversation(PanelConversation):
    """Writes into the panel's thread, reads the channel the user is viewing."""

    def __init__(self, adapter: "SlackAdapter", *, viewing: str, **kw) -> None:
        super().__init__(adapter, **kw)
        self.viewing = viewing

    async def history(self, *, limit, since=None, scope="channel"):
        try:
            info = (await self.client.conversations_info(channel=self.viewing))["channel"]
        except SlackApiError:
            info = {}
        if not info.get("is_member") and not info.get("is_im"):
            raise UserError(f"I can't read <#{self.viewing}>: invite me there first (`/invite @aibot`).")
        reader = SlackConversation(self.adapter, team=self.team, channel=self.viewing)
        return await reader.history(limit=limit, since=since, scope="channel")


class AssistantPanel:
    """The middleware and its listeners; work after the ack goes through the adapter."""

    def __init__(self, adapter: "SlackAdapter") -> None:
        self.adapter = adapter
        self.contexts = ThreadContexts(adapter)
        self.middleware = AsyncAssistant(thread_context_store=self.contexts)
        self.middleware.thread_started(self._started)
        self.middleware.thread_context_changed(self._context_changed)
        self.middleware.user_message(self._user_message)

    @property
    def prompts(self) -> list[dict]:
        return parse_prompts(self.adapter.settings.assistant_prompts)

    async def _started(self, body: dict, payload: dict, say, set_suggested_prompts) -> None:
        thread = payload.get("assistant_thread") or {}
        context = thread.get("context") or {}
        team = body.get("team_id") or context.get("team_id") or ""
        if thread.get("channel_id") and thread.get("thread_ts"):
            self.contexts.started(thread["channel_id"], thread["thread_ts"], context)
        self.adapter.background(self._greet(say, set_suggested_prompts, team=team, user=thread.get("user_id", ""),
                                            where=(thread.get("channel_id"), thread.get("thread_ts"), context)))
        self.adapter.handled += 1

    async def _context_changed(self, body: dict, payload: dict) -> None:
        thread = payload.get("assistant_thread") or {}
        if thread.get("channel_id") and thread.get("thread_ts"):  # after the ack: it may call Slack
            self.adapter.background(self.contexts.save(channel_id=thread["channel_id"], thread_ts=thread["thread_ts"],
                                                       context=thread.get("context") or {},
                                                       team=body.get("team_id") or ""))
        self.adapter.handled += 1

    async def prompts_for(self, team: str, user: str) -> list[dict]:
        """The workspace's own suggested prompts (`/aibot settings set assistant_prompts`),
        else the deployment's (SLACK_ASSISTANT_PROMPTS)."""
        services = self.adapter._services
        if services is not None and team:
            try:
                where = Incoming(platform="slack", tenant=team, channel="", user=user, text="", is_dm=True)
                own = (await services.prefs.for_message(where)).assistant_prompts
                if own and parse_prompts(own):
                    return parse_prompts(own)
            except Exception:
                log.warning("could not read the workspace's suggested prompts", exc_info=True)
        return self.prompts

    async def _greet(self, say, set_suggested_prompts, *, team: str = "", user: str = "", where=None) -> None:
        try:
            # Bolt's `say` here puts the thread's context in the greeting's metadata
            resp = await say(self.adapter.settings.assistant_greeting)
            channel, thread, context = where or (None, None, {})
            if channel and thread:
                message = resp.get("message") or {}
                await self.contexts.greeted(channel, thread, {**message, "ts": resp.get("ts") or message.get("ts")},
                                            context, team=team)
            prompts = await self.prompts_for(team, user)
            if prompts:
                await set_suggested_prompts(prompts=prompts, title="Try one of these:")
        except SlackApiError as exc:
            log.warning("could not greet in an assistant thread: %s", exc.response.get("error"))

    async def _user_message(self, body: dict, payload: dict) -> None:
        msg = from_event(body, self.adapter.me, in_bot_thread=self.adapter.in_bot_thread)
        if msg is not None and msg.thread:
            self.adapter.background(self._answer(msg))
        self.adapter.handled += 1

    async def _answer(self, msg: Incoming) -> None:
        channel, thread = msg.channel, msg.thread or ""
        # this process's memory, else the greeting's metadata (another process, or before a restart)
        state = await self.contexts.thread(channel_id=channel, thread_ts=thread, team=msg.tenant, before=msg.id)
        if state is not None and not state.titled and msg.text.strip():
            state.titled = True
            await self._title(msg.tenant, channel, thread, msg.text)
        conv: SlackConversation = PanelConversation(self.adapter, team=msg.tenant, channel=channel, thread=thread,
                                                    user=msg.user)
        found = panel_command(msg.text)
        if found is not None:
            name, text, about_viewing = found
            viewing = None
            if about_viewing and state is not None:  # the viewed channel as Slack has it now
                context = await self.contexts.find(channel_id=channel, thread_ts=thread, team=msg.tenant)
                viewing = (context or {}).get("channel_id")
            if about_viewing and not viewing:
                await conv.post(NOT_VIEWING)
                return
            if about_viewing:
                conv = ViewingConversation(self.adapter, viewing=viewing, team=msg.tenant, channel=channel,
                                           thread=thread, user=msg.user)
                msg = replace(msg, thread=None)  # "this channel" is the one being viewed, not the panel thread
            msg = replace(msg, command=name, text=text)
        self.adapter._submit(msg, conv)  # counted in the workspace's answers in flight, like any event

    async def _title(self, team: str, channel: str, thread: str, question: str) -> None:
        title = " ".join(question.split())
        title = title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…"
        try:
            await self.adapter.client_for(team).assistant_threads_setTitle(channel_id=channel, thread_ts=thread,
                                                                           title=title)
        except SlackApiError as exc:
            log.info("could not title an assistant thread: %s", exc.response.get("error"))
