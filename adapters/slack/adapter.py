"""Slack on slack-bolt's AsyncApp: Socket Mode when SLACK_APP_TOKEN is set, otherwise
HTTP mode (Events API, slash commands and interactivity on one path of the bot's HTTP
server, signatures checked with SLACK_SIGNING_SECRET).

Every event is acknowledged at once (bolt acks events itself; slash commands are acked
first thing in their listener) and handed to the core with `dispatch`, never awaited
inline. No AI logic here: events in, replies out.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections import OrderedDict
from dataclasses import replace

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.conversation import SlackConversation
from adapters.slack.normalize import SUMMARIZE_SHORTCUT, Identity, from_command, from_event, from_message_shortcut
from adapters.slack.pacing import Workspace
from adapters.slack.settings import SlackSettings
from bot.core.commands import CommandSet
from bot.core.errors import ConfigError
from bot.core.messages import Incoming
from bot.core.surface import Dispatch

log = logging.getLogger(__name__)

_ANY_COMMAND = re.compile(r"^/.+")
_ANYTHING = re.compile(r".*")


def build_client(settings: SlackSettings) -> AsyncWebClient:
    """The Web API client: SLACK_API_URL honoured; 429s retried after Retry-After."""
    kwargs = {"base_url": settings.api_url} if settings.api_url else {}
    return AsyncWebClient(
        token=settings.bot_token.get_secret_value(),
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=settings.max_retries),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
        **kwargs,
    )


class SlackAdapter:
    name = "slack"

    def __init__(self, *, settings: SlackSettings, client: AsyncWebClient | None = None) -> None:
        if settings.bot_token is None:
            raise ConfigError("Slack needs SLACK_BOT_TOKEN, e.g. SLACK_BOT_TOKEN=xoxb-...")
        if settings.app_token is None and settings.signing_secret is None:
            raise ConfigError(
                "Slack needs SLACK_APP_TOKEN (Socket Mode, e.g. SLACK_APP_TOKEN=xapp-...) "
                "or SLACK_SIGNING_SECRET (HTTP mode, from the app's Basic Information page)."
            )
        self.settings = settings
        self.bot_token = settings.bot_token.get_secret_value()
        self.client = client or build_client(settings)
        self.socket_mode = settings.app_token is not None
        self.app = AsyncApp(
            client=self.client,
            signing_secret=None if self.socket_mode else settings.signing_secret.get_secret_value(),
            request_verification_enabled=not self.socket_mode,
            ignoring_self_events_enabled=False,  # the router drops them, with the other bots'
            ignoring_self_assistant_message_events_enabled=False,
            # our listeners only hand work to a task, so bolt can answer as soon as they
            # return instead of polling for the ack every 10 ms
            process_before_response=True,
        )
        self.app.event("app_mention")(self._on_event)
        self.app.event("message")(self._on_event)
        self.app.command(_ANY_COMMAND)(self._on_command)
        # the "Summarize thread" message shortcut (deploy/slack-manifest.yaml): Slack sends
        # no slash commands from threads, so this is /summarize for the thread it is used on
        self.app.message_shortcut(SUMMARIZE_SHORTCUT)(self._on_summarize_shortcut)
        # interactivity shares the path; the bot sends no interactive elements yet, so a
        # stray action, shortcut or view submission is acknowledged and ignored
        self.app.action(_ANYTHING)(self._ack_only)
        self.app.shortcut(_ANYTHING)(self._ack_only)
        self.app.view(_ANYTHING)(self._ack_only)
        self.me: Identity | None = None
        self._workspaces: dict[str, Workspace] = {}
        self._threads: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._people: dict[str, tuple[str | None, str | None, bool]] = {}  # user -> (name, tz, admin): users.info
        self._tasks: set[asyncio.Task] = set()
        self._dispatch: Dispatch | None = None
        self._socket = None
        self._closed = asyncio.Event()
        self.handled = 0  # envelopes/requests handed over (acked), for tests and the benchmark

    # --- lifecycle ------------------------------------------------------------------

    @property
    def needs_http(self) -> bool:
        return not self.socket_mode

    @property
    def http_port(self) -> int:
        """HTTP mode's port when AIBOT_HTTP_PORT is unset (SLACK_HTTP_PORT)."""
        return self.settings.http_port

    def mount(self, web_app, path: str | None = None) -> None:
        """HTTP mode: Slack's events, commands and interactivity on one POST path."""
        web_app.router.add_post(path or self.settings.http_path, self._http)

    async def start(self, dispatch: Dispatch, *, commands: CommandSet = CommandSet()) -> None:
        """Connect; `commands` are declared in the app's manifest (deploy/), not here."""
        self._dispatch = dispatch
        try:
            auth = await self.client.auth_test()
        except SlackApiError as exc:
            raise ConfigError(
                f"Slack rejected SLACK_BOT_TOKEN ({exc.response.get('error')}); use the app's Bot User OAuth "
                "Token (xoxb-...) from its OAuth & Permissions page."
            ) from None
        self.me = Identity(user_id=auth["user_id"], bot_id=auth.get("bot_id"), team_id=auth["team_id"])
        if self.socket_mode:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            self._socket = AsyncSocketModeHandler(self.app, self.settings.app_token.get_secret_value())
            await self._socket.connect_async()
        log.info("Slack connected as %s in %s (%s mode)", self.me.user_id, self.me.team_id,
                 "socket" if self.socket_mode else "HTTP")

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def stop(self) -> None:
        await self.idle()  # answers already acknowledged are finished, not dropped
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        self._closed.set()

    # --- state shared by conversations ------------------------------------------------

    def workspace(self, team: str) -> Workspace:
        ws = self._workspaces.get(team)
        if ws is None:
            ws = self._workspaces[team] = Workspace(team)
        return ws

    def joined(self, channel: str, thread: str | None) -> None:
        """Remember a thread the bot wrote in: its follow-ups are answered unprompted."""
        if thread:
            self._threads[(channel, thread)] = None
            self._threads.move_to_end((channel, thread))
            while len(self._threads) > 50_000:
                self._threads.popitem(last=False)

    def in_bot_thread(self, channel: str, thread: str) -> bool:
        return (channel, thread) in self._threads

    def conversation(self, *, tenant: str, channel: str, thread: str | None = None) -> SlackConversation:
        return SlackConversation(self, team=tenant, channel=channel, thread=thread)

    # --- events in ------------------------------------------------------------------

    async def _on_event(self, body: dict) -> None:
        msg = from_event(body, self.me, in_bot_thread=self.in_bot_thread)
        if msg is not None:
            conv = SlackConversation(self, team=msg.tenant, channel=msg.channel, thread=msg.thread, user=msg.user)
            self._submit(msg, conv)
        self.handled += 1

    async def _on_command(self, ack, body: dict) -> None:
        await ack()  # within Slack's 3 s, before any work
        msg = from_command(body)
        conv = SlackConversation(self, team=msg.tenant, channel=msg.channel, user=msg.user,
                                 response_url=body.get("response_url"))
        self._submit(msg, conv)
        self.handled += 1

    async def _ack_only(self, ack) -> None:
        await ack()
        self.handled += 1

    async def _on_summarize_shortcut(self, ack, body: dict) -> None:
        await ack()  # within Slack's 3 s; the summary follows in the thread
        msg = from_message_shortcut(body)
        if msg is not None:
            conv = SlackConversation(self, team=msg.tenant, channel=msg.channel, thread=msg.thread, user=msg.user,
                                     response_url=body.get("response_url"))
            self._submit(msg, conv)
        self.handled += 1

    async def person(self, user: str) -> tuple[str | None, str | None, bool]:
        """A person's display name, IANA time zone (None where Slack won't say) and whether
        they are a workspace admin or owner (users.info, cached)."""
        if user not in self._people:
            try:
                info = (await self.client.users_info(user=user))["user"]
                profile = info.get("profile") or {}
                name = profile.get("display_name") or profile.get("real_name") or info.get("name")
                admin = bool(info.get("is_admin") or info.get("is_owner"))
                self._people[user] = (name, info.get("tz") or None, admin)
            except SlackApiError:
                self._people[user] = (None, None, False)
        return self._people[user]

    async def user_name(self, user: str) -> str | None:
        """A person's display name (users.info, cached); None if Slack won't say."""
        return (await self.person(user))[0]

    def _submit(self, msg: Incoming, conv: SlackConversation) -> None:
        ws = self.workspace(msg.tenant)
        ws.in_flight += 1
        task = asyncio.ensure_future(self._deliver(msg, conv))
        self._tasks.add(task)

        def done(t: asyncio.Task) -> None:
            ws.in_flight -= 1
            self._tasks.discard(t)

        task.add_done_callback(done)

    async def idle(self) -> None:
        """Wait until every event handed over so far is fully answered."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _deliver(self, msg: Incoming, conv: SlackConversation) -> None:
        # after the ack: who is asking, by name, so that prompts and summaries read well
        # and in which time zone (e.g. `/digest on 09:00` means 09:00 where they are)
        if (msg.user_name is None or msg.timezone is None) and msg.user and not (msg.from_self or msg.from_bot):
            name, tz, admin = await self.person(msg.user)
            msg = replace(msg, user_name=msg.user_name or name, timezone=msg.timezone or tz, is_admin=admin)
        result = self._dispatch(msg, conv)
        if inspect.isawaitable(result):
            await result

    async def _http(self, request):
        stamp = request.headers.get("X-Slack-Request-Timestamp", "")
        if stamp and not stamp.strip().isdigit():  # slack_sdk's verifier would raise on int() (a 500)
            return web.json_response({"error": "invalid request"}, status=401)
        bolt_request = await to_bolt_request(request)
        bolt_response = await self.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)
