"""Slack's assistant panel (Agents & AI Apps) through Bolt's `AsyncAssistant` middleware.

- `assistant_thread_started`: a greeting and the suggested prompts
  (`assistant.threads.setSuggestedPrompts`, SLACK_ASSISTANT_PROMPTS);
- `assistant_thread_context_changed`: the channel the user is viewing, kept per thread
  (`ThreadContexts`, an `AsyncAssistantThreadContextStore`);
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
from dataclasses import replace
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

KEEP = 10_000  # assistant threads remembered (context channel, titled)
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
    """The channel each assistant thread's user is viewing, in this process (Slack sends it
    again at the next channel switch, so a restart loses little)."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._contexts: OrderedDict[tuple[str, str], dict] = OrderedDict()

    async def save(self, *, channel_id: str, thread_ts: str, context: dict[str, str]) -> None:
        self._contexts[(channel_id, thread_ts)] = dict(context)
        self._contexts.move_to_end((channel_id, thread_ts))
        while len(self._contexts) > self.keep:
            self._contexts.popitem(last=False)

    async def find(self, *, channel_id: str, thread_ts: str) -> AssistantThreadContext | None:
        found = self._contexts.get((channel_id, thread_ts))
        return AssistantThreadContext(found) if found else None

    def known(self, channel_id: str, thread_ts: str) -> bool:
        return (channel_id, thread_ts) in self._contexts


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
        self.contexts = ThreadContexts()
        self._titled: OrderedDict[tuple[str, str], None] = OrderedDict()
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
        if thread.get("channel_id") and thread.get("thread_ts"):
            await self.contexts.save(channel_id=thread["channel_id"], thread_ts=thread["thread_ts"], context=context)
        team = body.get("team_id") or context.get("team_id") or ""
        self.adapter.background(self._greet(say, set_suggested_prompts, team=team, user=thread.get("user_id", "")))
        self.adapter.handled += 1

    async def _context_changed(self, payload: dict) -> None:
        thread = payload.get("assistant_thread") or {}
        if thread.get("channel_id") and thread.get("thread_ts"):
            await self.contexts.save(channel_id=thread["channel_id"], thread_ts=thread["thread_ts"],
                                     context=thread.get("context") or {})
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

    async def _greet(self, say, set_suggested_prompts, *, team: str = "", user: str = "") -> None:
        try:
            await say(self.adapter.settings.assistant_greeting)
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
        context = await self.contexts.find(channel_id=channel, thread_ts=thread)
        viewing = (context or {}).get("channel_id")
        if self.contexts.known(channel, thread) and (channel, thread) not in self._titled and msg.text.strip():
            await self._title(channel, thread, msg.text)
        conv: SlackConversation = PanelConversation(self.adapter, team=msg.tenant, channel=channel, thread=thread,
                                                    user=msg.user)
        found = panel_command(msg.text)
        if found is not None:
            name, text, about_viewing = found
            if about_viewing and not viewing:
                await conv.post(NOT_VIEWING)
                return
            if about_viewing:
                conv = ViewingConversation(self.adapter, viewing=viewing, team=msg.tenant, channel=channel,
                                           thread=thread, user=msg.user)
                msg = replace(msg, thread=None)  # "this channel" is the one being viewed, not the panel thread
            msg = replace(msg, command=name, text=text)
        self.adapter._submit(msg, conv)  # counted in the workspace's answers in flight, like any event

    async def _title(self, channel: str, thread: str, question: str) -> None:
        self._titled[(channel, thread)] = None
        while len(self._titled) > KEEP:
            self._titled.popitem(last=False)
        title = " ".join(question.split())
        title = title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…"
        try:
            await self.adapter.client.assistant_threads_setTitle(channel_id=channel, thread_ts=thread, title=title)
        except SlackApiError as exc:
            log.info("could not title an assistant thread: %s", exc.response.get("error"))
