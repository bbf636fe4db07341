"""Slack on slack-bolt's AsyncApp: Socket Mode when SLACK_APP_TOKEN is set, otherwise
HTTP mode (Events API, slash commands and interactivity on one path of the bot's HTTP
server, signatures checked with SLACK_SIGNING_SECRET).

One workspace with SLACK_BOT_TOKEN, or many through Bolt's OAuth flow (SLACK_CLIENT_ID
..., `adapters.slack.oauth`): then every call for a workspace uses that workspace's own
token, and an uninstall or token revocation stops its use at once.

Every event is acknowledged at once and handed to the core with `dispatch`, never awaited
inline: by the intake (`adapters.slack.intake`, `adapters.slack.socket_intake`) on a
thread of its own, so that a busy main loop does not delay it (SLACK_INTAKE, on by
default); otherwise by Bolt on the main loop. Slash commands and interactivity are acked
first thing in their listener (their ack carries Bolt's response). No AI logic here:
events in, replies out.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.acked import CLAIM
from adapters.slack.assistant import AssistantPanel
from adapters.slack.controls import (ACTION_IDS, REASON_CALLBACK, from_action, from_reaction, from_view_submission,
                                     reason_modal, thread_of)
from adapters.slack.conversation import SlackConversation
from adapters.slack.normalize import SUMMARIZE_SHORTCUT, Identity, from_command, from_event, from_message_shortcut
from adapters.slack.metering import CountingHandler
from adapters.slack.pacing import BURST_SECONDS, TIERS, Budget, Workspace
from adapters.slack.resume import close_cut
from adapters.slack.settings import SlackSettings
from bot.core.answers import BAD, Press
from bot.core.commands import CommandSet
from bot.core.errors import ConfigError, unreachable
from bot.core.messages import Incoming
from bot.core.surface import Dispatch

log = logging.getLogger(__name__)

_ANY_COMMAND = re.compile(r"^/.+")
SESSION_CONNECTIONS = 200  # open connections to the Web API at most (aiohttp's default is 100)
_ANYTHING = re.compile(r".*")


def build_client(settings: SlackSettings, *, session: aiohttp.ClientSession | None = None) -> AsyncWebClient:
    """The Web API client: SLACK_API_URL honoured; 429s retried after Retry-After; every
    call on `session` (kept-alive connections) when one is given. Without SLACK_BOT_TOKEN
    (many workspaces) it has no token of its own: each call names one."""
    kwargs = {"base_url": settings.api_url} if settings.api_url else {}
    return AsyncWebClient(
        token=settings.bot_token.get_secret_value() if settings.bot_token else None,
        session=session,
        retry_handlers=[
            CountingHandler(),  # first: sees every response, for the metrics; never retries
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=settings.max_retries),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
        **kwargs,
    )


class SlackAdapter:
    name = "slack"

    def __init__(self, *, settings: SlackSettings, client: AsyncWebClient | None = None,
                 tiers: dict[str, float] = TIERS, burst: float = BURST_SECONDS) -> None:
        """`tiers`: calls per minute this app may make per workspace and write method
        (default: Slack's documented tiers, less ~10%); `burst`: seconds' worth of them
        that may come at once (`adapters.slack.pacing`)."""
        if settings.bot_token is None and not settings.distributed:
            raise ConfigError("Slack needs SLACK_BOT_TOKEN for one workspace (e.g. SLACK_BOT_TOKEN=xoxb-...), or "
                              "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET to be installed in many through OAuth.")
        if settings.distributed:
            missing = [v for v, f in (("SLACK_CLIENT_SECRET", "client_secret"), ("SLACK_INSTALLATION_KEY", "installation_key"),
                                      ("SLACK_SIGNING_SECRET", "signing_secret")) if getattr(settings, f) is None]
            if missing:
                raise ConfigError(f"Slack OAuth distribution (SLACK_CLIENT_ID) also needs {', '.join(missing)}; "
                                  "see docs/multi-workspace.md.")
        if settings.app_token is None and settings.signing_secret is None:
            raise ConfigError(
                "Slack needs SLACK_APP_TOKEN (Socket Mode, e.g. SLACK_APP_TOKEN=xapp-...) "
                "or SLACK_SIGNING_SECRET (HTTP mode, from the app's Basic Information page)."
            )
        self.settings = settings
        self.bot_token = settings.bot_token.get_secret_value() if settings.bot_token else None
        self.client = client or build_client(settings)
        self._owns_client = client is None
        self._session: aiohttp.ClientSession | None = None
        self.socket_mode = settings.app_token is not None
        self.installations = self.tokens = None
        oauth = {}
        if settings.distributed:
            from adapters.slack.installations import SlackInstallations, SlackOAuthStates
            from adapters.slack.oauth import Tokens, oauth_settings

            self.installations = SlackInstallations(client_id=settings.client_id,
                                                    keys=settings.installation_key.get_secret_value())
            self.states = SlackOAuthStates()
            self.tokens = Tokens(settings=settings, installations=self.installations, client=self.client)
            oauth["oauth_settings"] = oauth_settings(settings, installations=self.installations, states=self.states,
                                                     tokens=self.tokens)
        self.app = AsyncApp(
            client=self.client,
            signing_secret=None if self.socket_mode else settings.signing_secret.get_secret_value(),
            request_verification_enabled=not self.socket_mode,
            ignoring_self_events_enabled=False,  # the router drops them, with the other bots'
            ignoring_self_assistant_message_events_enabled=False,
            # our listeners only hand work to a task, so bolt can answer as soon as they
            # return instead of polling for the ack every 10 ms
            process_before_response=True,
            **oauth,
        )
        self.app.event("app_uninstalled")(self._on_uninstalled)
        self.app.event("tokens_revoked")(self._on_tokens_revoked)
        self.app.event("app_home_opened")(self._on_home)
        # the assistant panel (Agents & AI Apps): its events and its threads' messages are
        # taken by Bolt's Assistant middleware; everything else reaches the listeners below
        self.panel = AssistantPanel(self)
        self.app.use(self.panel.middleware)
        self.app.event("app_mention")(self._on_event)
        self.app.event("message")(self._on_event)
        self.app.command(_ANY_COMMAND)(self._on_command)
        # the "Summarize thread" message shortcut (deploy/slack-manifest.yaml): Slack sends
        # no slash commands from threads, so this is /summarize for the thread it is used on
        self.app.message_shortcut(SUMMARIZE_SHORTCUT)(self._on_summarize_shortcut)
        # the buttons under answers (Stop, Regenerate, 👍/👎) and the 👎 reason modal
        for action_id in ACTION_IDS:
            self.app.action(action_id)(self._on_control)
        self.app.view(REASON_CALLBACK)(self._on_reason)
        # Stop while a native stream runs (it can carry no button then): a 🛑 reaction on it
        self.app.event("reaction_added")(self._on_reaction)
        # interactivity shares the path: any other action, shortcut or view submission is
        # acknowledged and ignored
        self.app.action(_ANYTHING)(self._ack_only)
        self.app.shortcut(_ANYTHING)(self._ack_only)
        self.app.view(_ANYTHING)(self._ack_only)
        self.me: Identity | None = None
        self._workspaces: dict[str, Workspace] = {}
        self._tiers, self._burst = tiers, burst
        self._peers = None  # the processes on this database (`bind`): each takes its share of a workspace's tiers
        self._threads: OrderedDict[tuple[str, str], None] = OrderedDict()
        # (team, user) -> ((name, tz, admin), when read): users.info, re-read after SLACK_ROLE_CACHE_SECONDS
        # so that a promotion or demotion counts within minutes
        self._people: dict[tuple[str, str], tuple[tuple[str | None, str | None, bool], float]] = {}
        self._people_lookups: dict[tuple[str, str], asyncio.Future] = {}  # users.info calls under way
        self._tasks: set[asyncio.Task] = set()
        self._dispatch: Dispatch | None = None
        self._identities: dict[str, Identity] = {}  # team -> the bot's ids there (many workspaces)
        self._tenants = None  # the core's tenant lifecycle (`bind`)
        self._services = None  # for the App Home tab: the workspace's settings and usage (`bind`)
        self._gone: set[str] = set()  # teams that removed the bot since this process started
        self._socket = None
        self._intake = None  # adapters.slack.intake.Handoff, when an intake acknowledges (SLACK_INTAKE)
        self._replaying: set = set()  # spool folders of gone processes being taken up
        self._orphan_check: asyncio.TimerHandle | None = None  # the second look, after a predecessor's lease
        self._acked = None  # adapters.slack.acked.AckedSpool (with AIBOT_DATA_DIR)
        self._closed = asyncio.Event()
        self.handled = 0  # envelopes/requests handed over (acked), for tests and the benchmark

    # --- lifecycle ------------------------------------------------------------------

    @property
    def needs_http(self) -> bool:
        return not self.socket_mode or self.installations is not None  # the install pages are web pages

    def bind(self, services) -> None:
        """The bot's storage and tenant lifecycle (before `start`)."""
        self._tenants = getattr(services, "tenants", None)
        self._services = services
        self._peers = getattr(services, "peers", None)
        data_dir = getattr(getattr(services, "settings", None), "data_dir", None)
        if data_dir is not None and self.settings.intake:  # acknowledged events survive a kill -9
            from adapters.slack.acked import AckedSpool
            from bot.core.journal import process_id

            journal = getattr(services, "journal", None)
            self._acked = AckedSpool(folder=data_dir / "acked", owner=journal.owner if journal else process_id())
        if self.installations is not None:
            self.installations.attach(services.db)
            self.states.attach(services.db)
            if self._tenants is not None:  # installed again within the grace period: its data stays
                tenants = self._tenants
                self.installations.on_saved = lambda team: tenants.restored(platform="slack", tenant=team)

    @property
    def http_port(self) -> int:
        """HTTP mode's port when AIBOT_HTTP_PORT is unset (SLACK_HTTP_PORT)."""
        return self.settings.http_port

    http_port_variable = "SLACK_HTTP_PORT"  # named when that port is taken

    def mount(self, web_app, path: str | None = None) -> None:
        """HTTP mode: Slack's events, commands and interactivity on one POST path (unless
        the intake takes it: `front_routes`); with OAuth distribution also the install and
        redirect pages."""
        if not self.socket_mode and not self.settings.intake:
            web_app.router.add_post(path or self.settings.http_path, self._http)
        flow = self.app.oauth_flow
        if flow is not None:
            web_app.router.add_get(flow.install_path, self._oauth)
            web_app.router.add_get(flow.redirect_uri_path, self._oauth)

    def front_routes(self) -> dict:
        """HTTP mode with SLACK_HTTP_INTAKE: Slack's path, acknowledged on the HTTP front
        door's own thread (`adapters.slack.intake`); called on the main loop before the
        server starts."""
        if self.socket_mode or not self.settings.intake:
            return {}
        from adapters.slack.intake import SlackIntake

        intake = SlackIntake(signing_secret=self.settings.signing_secret.get_secret_value(), handoff=self._handoff())
        return {self.settings.http_path: intake.handle}

    def _handoff(self):
        from adapters.slack.intake import Handoff

        self._intake = Handoff(loop=asyncio.get_running_loop(), dispatch=self._dispatch_verified, track=self.background)
        return self._intake

    async def _dispatch_verified(self, body: str | dict, headers: dict):
        """A delivery whose signature the intake checked: Bolt's "socket_mode" requests are
        those verified by their transport (see `adapters.slack.intake`)."""
        return await self.app.async_dispatch(AsyncBoltRequest(body=body, headers=headers, mode="socket_mode"))

    async def start(self, dispatch: Dispatch, *, commands: CommandSet = CommandSet()) -> None:
        """Connect; `commands` are declared in the app's manifest (deploy/), not here."""
        self._dispatch = dispatch
        if self._owns_client and self.client.session is None:
            # one session for every Web API call (slack_sdk opens one per call otherwise);
            # made here because an aiohttp session needs the running loop, and handed to
            # the client bolt already holds, as its `session=` would have been
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=SESSION_CONNECTIONS))
            self.client.session = self._session
        if self.installations is not None:
            await self._connect()
            log.info("Slack serving the workspaces installed through OAuth (%s mode), installs at %s",
                     "socket" if self.socket_mode else "HTTP", self.app.oauth_flow.install_path)
            self._opened()
            return
        try:
            auth = await self.client.auth_test()
        except SlackApiError as exc:
            await self._close_session()
            raise ConfigError(
                f"Slack rejected SLACK_BOT_TOKEN ({exc.response.get('error')}); use the app's Bot User OAuth "
                "Token (xoxb-...) from its OAuth & Permissions page."
            ) from None
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            await self._close_session()
            raise unreachable("Slack Web API", self.client.base_url, "SLACK_API_URL", exc) from None
        self.me = Identity(user_id=auth["user_id"], bot_id=auth.get("bot_id"), team_id=auth["team_id"])
        await self._connect()
        log.info("Slack connected as %s in %s (%s mode)", self.me.user_id, self.me.team_id,
                 "socket" if self.socket_mode else "HTTP")
        self._opened()

    def _opened(self) -> None:
        """Ready for deliveries: the intake takes them from now on, and the events a
        killed process on this machine acknowledged and never handed over are taken up."""
        if self._intake is None or self._intake.ready:  # Socket Mode opens it before connecting, then start() again
            return
        self._intake.spool = self._acked
        self._intake.ready = True
        if self._acked is not None:
            self._take_up_orphans()
            peers = getattr(self._services, "peers", None)
            if peers is not None:  # a predecessor whose row is still live now (a container restarted at once)
                self._orphan_check = asyncio.get_running_loop().call_later(
                    peers.lease + 2 * peers.every, self._take_up_orphans)

    def _take_up_orphans(self) -> None:
        """Replay the spooled events of processes that are gone: on this machine (same host
        and PID namespace) a process that no longer runs; elsewhere (a restarted container
        has a new PID namespace) an owner without a live row in the process registry."""
        from bot.core import processes
        from bot.core.journal import dead_neighbour

        if self._intake is None or self._intake.closing:
            return
        machine = processes.machine()
        live = getattr(getattr(self._services, "peers", None), "live", None)

        def gone(owner: str) -> bool:
            if dead_neighbour(owner, machine):
                return True
            return live is not None and not owner.startswith(machine + ":") and owner not in live

        for folder in self._acked.orphans(gone):
            if folder not in self._replaying:
                self._replaying.add(folder)
                self.background(self._replay(folder))

    async def _replay(self, folder) -> None:
        from adapters.slack.acked import AckedSpool, Claim

        events = AckedSpool.read(folder)
        if events:
            log.warning("taking up %d Slack event(s) acknowledged by a process that is gone", len(events))
        claims = [Claim(path) for path, _ in events]
        await asyncio.gather(*(self._intake.run(payload, {}, claim, retry=True)
                               for claim, (_, payload) in zip(claims, events)), return_exceptions=True)
        await asyncio.gather(*(c.finished.wait() for c in claims))  # their answers finished too
        try:
            folder.rmdir()
        except OSError:
            pass  # not empty (a file the disk refused to remove): tried again at the next start

    async def _connect(self) -> None:
        if self.socket_mode:
            if self.settings.intake:  # envelopes acknowledged on a thread of their own
                from adapters.slack.socket_intake import SocketIntake

                self._socket = SocketIntake(app_token=self.settings.app_token.get_secret_value(),
                                            api_url=self.settings.api_url, handoff=self._handoff())
                self._opened()  # envelopes may come as soon as it connects
            else:
                from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

                self._socket = AsyncSocketModeHandler(self.app, self.settings.app_token.get_secret_value())
            try:
                await (self._socket.connect() if self.settings.intake else self._socket.connect_async())
            except SlackApiError as exc:
                self._socket = None
                await self._close_session()
                raise ConfigError(
                    f"Slack rejected SLACK_APP_TOKEN ({exc.response.get('error')}); use an app-level token "
                    "(xapp-...) with the connections:write scope, from the app's Basic Information page."
                ) from None
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                self._socket = None
                await self._close_session()
                raise unreachable("Slack Socket Mode service", self.client.base_url, "SLACK_API_URL", exc) from None

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def stop(self) -> None:
        if self._socket is not None and self.settings.intake:  # disconnect first: Slack sends newer envelopes elsewhere
            await self._socket.close()
            self._socket = None
        if self._orphan_check is not None:
            self._orphan_check.cancel()
        if self._intake is not None:  # Slack delivers anything newer again; what was acknowledged is handed over
            await self._intake.close()
        await self.idle()  # answers already acknowledged are finished, not dropped
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        await self._close_session()
        self._closed.set()

    async def _close_session(self) -> None:
        if self._session is not None:
            self.client.session = None
            await self._session.close()
            self._session = None

    # --- state shared by conversations ------------------------------------------------

    def workspace(self, team: str) -> Workspace:
        ws = self._workspaces.get(team)
        if ws is None:
            budget = Budget(tiers=self._tiers, burst=self._burst, share=lambda: self._share(team),
                            burst_share=self._burst_share)
            ws = self._workspaces[team] = Workspace(team, budget=budget)
        return ws

    def _share(self, team: str) -> float:
        """This process's part of `team`'s Slack limits: 1/N of the N processes on this
        database writing there lately (Slack counts per workspace, not per process)."""
        return self._peers.share(self.name, team) if self._peers is not None else 1.0

    def _burst_share(self) -> float:
        """This process's part of each workspace's bursts: 1/N of the N processes serving
        Slack on this database (a burst is spent before the others could hear of it)."""
        return 1.0 / self._peers.count(self.name) if self._peers is not None else 1.0

    def active_tenants(self, within: float) -> list[str]:
        """The workspaces this process writes to: answers in flight there, or a write in
        the last `within` seconds (`bot.core.peers` shares their limits among such processes)."""
        since = time.monotonic() - within
        return [team for team, ws in self._workspaces.items() if ws.in_flight or ws.budget.last_used >= since]

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

    # --- answers a stopped process left cut off (bot.core.recovery) ---------------------

    async def resume(self, msg: Incoming) -> SlackConversation:
        """Where to answer `msg` again: its thread, for the same asker."""
        return SlackConversation(self, team=msg.tenant, channel=msg.channel, thread=msg.thread, user=msg.user)

    async def close_cut(self, msg: Incoming, message_id: str, *, native: bool, note: str) -> None:
        await close_cut(self, msg, message_id, native=native, note=note)

    # --- one workspace or many ----------------------------------------------------------

    def client_for(self, team: str):
        """The Web API client acting as the bot of `team` (its own token when there are many)."""
        if self.tokens is None:
            return self.client
        from adapters.slack.oauth import TeamClient

        return TeamClient(self.client, self.tokens, team)

    async def token_for(self, team: str) -> str:
        return self.bot_token if self.tokens is None else await self.tokens.token(team)

    def identity(self, team: str) -> Identity:
        """Who the bot is in `team` (auth.test with one token; Bolt's authorization with many)."""
        return self.me or self._identities.get(team) or Identity(user_id="", bot_id=None, team_id=team)

    def _seen(self, context) -> Identity:
        """Many workspaces: the bot's ids and token in the workspace Bolt authorized the event for."""
        if self.me is not None:
            return self.me
        team = context.team_id or ""
        me = Identity(user_id=context.bot_user_id or "", bot_id=context.bot_id, team_id=team)
        self._identities[team] = me
        self.tokens.seen(team, context.bot_token, context.enterprise_id)
        return me

    # --- events in ------------------------------------------------------------------

    async def _on_event(self, body: dict, context) -> None:
        msg = from_event(body, self._seen(context), in_bot_thread=self.in_bot_thread)
        if msg is not None:
            conv = SlackConversation(self, team=msg.tenant, channel=msg.channel, thread=msg.thread, user=msg.user)
            self._submit(msg, conv)
        self.handled += 1

    async def _on_command(self, ack, body: dict, context) -> None:
        await ack()  # within Slack's 3 s, before any work
        self._seen(context)
        msg = from_command(body)
        conv = SlackConversation(self, team=msg.tenant, channel=msg.channel, user=msg.user,
                                 response_url=body.get("response_url"))
        self._submit(msg, conv)
        self.handled += 1

    async def _ack_only(self, ack) -> None:
        await ack()
        self.handled += 1

    async def _on_summarize_shortcut(self, ack, body: dict, context) -> None:
        await ack()  # within Slack's 3 s; the summary follows in the thread
        self._seen(context)
        msg = from_message_shortcut(body)
        if msg is not None:
            conv = SlackConversation(self, team=msg.tenant, channel=msg.channel, thread=msg.thread, user=msg.user,
                                     response_url=body.get("response_url"))
            self._submit(msg, conv)
        self.handled += 1

    async def _on_control(self, ack, body: dict) -> None:
        await ack()  # within Slack's 3 s; a 👎 opens its modal at once (the trigger_id expires in 3 s)
        press = from_action(body)
        if press is not None:
            thread = thread_of(body)
            if press.action == BAD and body.get("trigger_id"):
                try:
                    await self.client.views_open(trigger_id=body["trigger_id"], view=reason_modal(press, thread))
                except SlackApiError as exc:
                    log.info("could not open the feedback modal: %s", exc.response.get("error"))
            conv = SlackConversation(self, team=press.tenant, channel=press.channel, thread=thread, user=press.user)
            self._submit_press(press, conv)
        self.handled += 1

    async def _on_reaction(self, body: dict, context) -> None:
        press = from_reaction(body, self._seen(context).user_id)
        if press is not None:
            conv = SlackConversation(self, team=press.tenant, channel=press.channel, user=press.user)
            self._submit_press(press, conv)
        self.handled += 1

    async def _on_reason(self, ack, body: dict) -> None:
        await ack()  # closes the modal
        found = from_view_submission(body)
        if found is not None:
            press, thread = found
            conv = SlackConversation(self, team=press.tenant, channel=press.channel, thread=thread, user=press.user)
            self._submit_press(press, conv)
        self.handled += 1

    def background(self, coro) -> asyncio.Task:
        """Work after an ack, tracked so that `idle` and `stop` wait for it."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _submit_press(self, press: Press, conv: SlackConversation) -> None:
        result = self._dispatch(press, conv)
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def person(self, user: str, team: str = "") -> tuple[str | None, str | None, bool]:
        """A person's display name, IANA time zone (None where Slack won't say) and whether
        they are a workspace admin or owner (users.info `is_admin`/`is_owner`, cached briefly).
        Mentions arriving together from one person share one users.info call (Tier 4)."""
        key = (team, user)
        found = self._people.get(key)
        if found is not None and time.monotonic() - found[1] < self.settings.role_cache_seconds:
            return found[0]
        lookup = self._people_lookups.get(key)
        if lookup is None:
            lookup = asyncio.ensure_future(self._look_up_person(user, team))
            self._people_lookups[key] = lookup
            lookup.add_done_callback(lambda _: self._people_lookups.pop(key, None))
        return await asyncio.shield(lookup)  # one asker giving up does not cancel the others' lookup

    async def _look_up_person(self, user: str, team: str) -> tuple[str | None, str | None, bool]:
        try:
            info = (await self.client_for(team).users_info(user=user))["user"]
            profile = info.get("profile") or {}
            name = profile.get("display_name") or profile.get("real_name") or info.get("name")
            admin = bool(info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner"))
            person = (name, info.get("tz") or None, admin)
        except SlackApiError:
            person = (None, None, False)  # unknown: never an admin
        self._people[(team, user)] = (person, time.monotonic())
        return person

    async def user_name(self, user: str, team: str = "") -> str | None:
        """A person's display name (users.info, cached); None if Slack won't say."""
        return (await self.person(user, team))[0]

    def _submit(self, msg: Incoming, conv: SlackConversation) -> None:
        ws = self.workspace(msg.tenant)
        ws.in_flight += 1
        task = asyncio.ensure_future(self._deliver(msg, conv))
        self._tasks.add(task)
        claim = CLAIM.get()  # the event's file on disk (the intake's), kept until this answer is finished
        if claim is not None:
            claim.taken = True

        def done(t: asyncio.Task) -> None:
            ws.in_flight -= 1
            self._tasks.discard(t)
            if claim is not None:
                claim.done()

        task.add_done_callback(done)

    async def idle(self) -> None:
        """Wait until every event handed over so far is fully answered."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _deliver(self, msg: Incoming, conv: SlackConversation) -> None:
        # after the ack: who is asking, by name, so that prompts and summaries read well,
        # in which time zone (e.g. `/digest on 09:00` means 09:00 where they are), and
        # whether they are a workspace admin or owner (admin-only commands)
        if msg.user and not (msg.from_self or msg.from_bot):
            name, tz, admin = await self.person(msg.user, msg.tenant)
            msg = replace(msg, user_name=msg.user_name or name, timezone=msg.timezone or tz, is_admin=admin)
        if msg.tenant in self._gone and self._tenants is not None:  # installed again: keep its data
            self._gone.discard(msg.tenant)
            await self._tenants.restored(platform="slack", tenant=msg.tenant)
        result = self._dispatch(msg, conv)
        if inspect.isawaitable(result):
            await result

    # --- App Home -------------------------------------------------------------------

    async def _on_home(self, body: dict, context) -> None:
        """Someone opened the bot's Home tab: publish it for them (settings; usage for admins)."""
        self._seen(context)
        event = body.get("event") or {}
        team, user = body.get("team_id") or context.team_id or "", event.get("user") or ""
        if event.get("tab") == "home" and user and self._services is not None:
            self._track_home(team, user)
        self.handled += 1

    def _track_home(self, team: str, user: str) -> None:
        task = asyncio.ensure_future(self._publish_home(team, user))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish_home(self, team: str, user: str) -> None:
        from adapters.slack.home import home_view
        from bot.core.reports import usage_report

        try:
            services = self._services
            _, _, admin = await self.person(user, team)
            prefs = await services.prefs.for_message(Incoming(platform="slack", tenant=team, channel="", user=user,
                                                              text="", is_admin=admin))
            usage = None
            if admin:
                since = datetime.now(timezone.utc) - timedelta(days=30)
                usage = await usage_report(services.db, by="pattern", since=since, workspace=team, platform="slack",
                                           ledger=services.ledger)
            view = home_view(bot_name=services.settings.bot_name, prefs=prefs, admin=admin, usage=usage)
            await self.client_for(team).views_publish(user_id=user, view=view)
        except Exception:
            log.exception("could not publish the Home tab in %s", team)

    # --- uninstalls ------------------------------------------------------------------

    async def _on_uninstalled(self, body: dict) -> None:
        """app_uninstalled: the workspace's tokens are dead; forget them now, and let the
        core schedule the deletion of its data."""
        await self._removed(body, "app_uninstalled")
        self.handled += 1

    async def _on_tokens_revoked(self, body: dict) -> None:
        """tokens_revoked: when the bot's own token is among them, as an uninstall."""
        tokens = (body.get("event") or {}).get("tokens") or {}
        if tokens.get("bot"):
            await self._removed(body, "tokens_revoked")
        elif self.installations is not None and tokens.get("oauth"):
            for user in tokens["oauth"]:
                await self.installations.async_delete_installation(
                    enterprise_id=body.get("enterprise_id"), team_id=body.get("team_id"), user_id=user)
        self.handled += 1

    async def _removed(self, body: dict, reason: str) -> None:
        team = body.get("team_id") or ""
        if self.installations is not None:
            await self.installations.async_delete_all(enterprise_id=body.get("enterprise_id"), team_id=team)
            self.tokens.forget(team, body.get("enterprise_id"))  # after the rows: no read in between finds them
        log.warning("Slack workspace %s removed the bot (%s): its tokens are no longer used", team, reason)
        self._gone.add(team)
        if self._tenants is not None:
            await self._tenants.removed(platform="slack", tenant=team, reason=reason)

    async def _oauth(self, request):
        """GET /slack/install and /slack/oauth_redirect: Bolt's OAuth flow."""
        flow = self.app.oauth_flow
        bolt_request = await to_bolt_request(request)
        if request.path == flow.install_path:
            bolt_response = await flow.handle_installation(bolt_request)
        else:
            bolt_response = await flow.handle_callback(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def _http(self, request):
        stamp = request.headers.get("X-Slack-Request-Timestamp", "")
        if stamp and not stamp.strip().isdigit():  # slack_sdk's verifier would raise on int() (a 500)
            return web.json_response({"error": "invalid request"}, status=401)
        bolt_request = await to_bolt_request(request)
        bolt_response = await self.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)
