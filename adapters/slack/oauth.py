"""Many workspaces: Bolt's OAuth flow and a bot token per workspace.

`oauth_settings` builds Bolt's `AsyncOAuthSettings` over the PostgreSQL stores
(`adapters.slack.installations`): `/slack/install` sends the installer to Slack with a
one-time `state`, `/slack/oauth_redirect` checks it (and Bolt's state cookie), exchanges
the code with `oauth.v2.access` and saves the installation, encrypted.

`Tokens` answers "which bot, with which token, in this workspace?", for every event
(`CachedAuthorize`, Bolt's per-event authorization) and where no event is at hand (a
digest, a user's name): from the store, rotating a bot token that is about to expire
(`oauth.v2.access` with its refresh token) through our Web API client, so that
SLACK_API_URL is honoured there too. The answer is remembered for TOKEN_TTL seconds, and
never into the window in which its token is due for rotation (so rotation always starts
from the stored row, whichever process rotated last); it is forgotten at once when the
workspace uninstalls or revokes the bot.

Bolt's own authorizer reads the store (and decrypts the row) and calls `auth.test` for
every event; at tens of events a second that is a database round trip and a Web API
call per event, before the event reaches a listener.
"""
from __future__ import annotations

import asyncio
import logging
import time

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.oauth.token_rotation.rotator import SlackTokenRotationError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.installations import SlackInstallations, SlackOAuthStates
from adapters.slack.settings import SlackSettings
from bot.core.errors import UserError

log = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
TOKEN_TTL = 30.0  # seconds a looked-up token is reused by this process


class NotInstalled(UserError):
    """The workspace has no installation (never installed, uninstalled, or revoked)."""


def oauth_settings(settings: SlackSettings, *, installations: SlackInstallations, states: SlackOAuthStates,
                   tokens: "Tokens") -> AsyncOAuthSettings:
    secret = settings.client_secret.get_secret_value()
    oauth = AsyncOAuthSettings(
        client_id=settings.client_id,
        client_secret=secret,
        scopes=[s.strip() for s in settings.scopes.split(",") if s.strip()],
        user_scopes=[],
        redirect_uri=settings.redirect_uri,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        authorization_url=settings.authorize_url,
        installation_store=installations,
        installation_store_bot_only=True,
        token_rotation_expiration_minutes=settings.token_rotation_minutes,
        state_store=states,
    )
    oauth.authorize = CachedAuthorize(tokens)
    return oauth


class CachedAuthorize(AsyncAuthorize):
    """Bolt's per-event authorization from `Tokens`: the workspace's bot and token, no
    `auth.test` (the bot's ids were stored at install; a revoked token is reported by
    Slack's `tokens_revoked`/`app_uninstalled` events, which forget it)."""

    def __init__(self, tokens: "Tokens") -> None:
        self.tokens = tokens

    async def __call__(self, *, context, enterprise_id: str | None, team_id: str | None, user_id: str | None,
                       **_actor) -> AuthorizeResult | None:
        try:
            bot = await self.tokens.bot(enterprise_id=enterprise_id, team_id=team_id,
                                        is_enterprise_install=bool(context.is_enterprise_install))
        except SlackTokenRotationError as exc:  # as Bolt's: the event goes no further
            log.error("could not rotate the bot token of team %s: %s", team_id, exc)
            return None
        if bot is None:
            log.debug("no installation for enterprise %s team %s", enterprise_id, team_id)
            return None
        return AuthorizeResult(enterprise_id=bot.enterprise_id, team_id=bot.team_id, team=bot.team_name,
                               bot_user_id=bot.bot_user_id, bot_id=bot.bot_id, bot_token=bot.bot_token,
                               bot_scopes=bot.bot_scopes)


Key = tuple[str | None, str | None, bool]  # (enterprise, team or None for an org-wide install, org-wide)


class Tokens:
    """The bot of each workspace, for every event and every call the bot makes there."""

    def __init__(self, *, settings: SlackSettings, installations: SlackInstallations, client: AsyncWebClient,
                 ttl: float = TOKEN_TTL) -> None:
        self.installations = installations
        self.minutes = settings.token_rotation_minutes
        self.ttl = ttl
        self.rotator = AsyncTokenRotator(client_id=settings.client_id,
                                         client_secret=settings.client_secret.get_secret_value(), client=client)
        self._bots: dict[Key, tuple[Bot, float]] = {}  # -> (bot, until: monotonic)
        self._lookups: dict[Key, asyncio.Future] = {}  # store reads under way: one per workspace at a time
        self.enterprise: dict[str, str | None] = {}  # team -> enterprise id, as events tell it (Grid)
        self.reads = 0  # installation-store reads (for tests and the benchmark)
        self._forgets = 0  # workspaces forgotten so far: a read that overlapped one is not remembered

    def seen(self, team: str, token: str | None, enterprise: str | None) -> None:
        """An event of `team` was authorized (its enterprise, for calls outside events)."""
        self.enterprise[team] = enterprise

    def forget(self, team: str, enterprise: str | None = None) -> None:
        """The workspace (or, with `enterprise` and no team, the org-wide install) is gone."""
        self._forgets += 1  # a read under way may have found the rows just deleted: not kept
        for key in [k for k in self._bots if (team and k[1] == team) or (enterprise and not team and k[0] == enterprise)]:
            self._bots.pop(key, None)

    async def bot(self, *, enterprise_id: str | None, team_id: str | None,
                  is_enterprise_install: bool = False) -> Bot | None:
        """The workspace's bot with a token that is not about to expire; None if not installed."""
        key = (enterprise_id, None if is_enterprise_install else team_id, is_enterprise_install)
        known = self._bots.get(key)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        lookup = self._lookups.get(key)
        if lookup is None:  # events of one workspace arriving together share one read (and one rotation)
            lookup = asyncio.ensure_future(self._read(key))
            self._lookups[key] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(key, None))
        return await asyncio.shield(lookup)

    async def _read(self, key: Key) -> Bot | None:
        enterprise_id, team_id, org = key
        self.reads += 1
        forgets = self._forgets
        bot = await self.installations.async_find_bot(enterprise_id=enterprise_id, team_id=team_id,
                                                      is_enterprise_install=org)
        if bot is None:
            self._bots.pop(key, None)
            return None
        if bot.bot_refresh_token is not None:
            fresh = await self.rotator.perform_bot_token_rotation(bot=bot, minutes_before_expiration=self.minutes)
            if fresh is not None:
                await self.installations.async_save_bot(fresh)
                bot = fresh
        until = time.monotonic() + self.ttl
        if bot.bot_token_expires_at is not None:  # never into the window where it is due for rotation
            until = min(until, time.monotonic() + bot.bot_token_expires_at - time.time() - self.minutes * 60)
        if until > time.monotonic() and forgets == self._forgets:
            self._bots[key] = (bot, until)
        return bot

    async def token(self, team: str) -> str:
        enterprise = self.enterprise.get(team)
        bot = await self.bot(enterprise_id=enterprise, team_id=team)
        if bot is None and enterprise is not None:  # an org-wide install covers every workspace of the org
            bot = await self.bot(enterprise_id=enterprise, team_id=None, is_enterprise_install=True)
        if bot is None:
            raise NotInstalled("The bot is not installed in this Slack workspace (any more).")
        return bot.bot_token


class TeamClient:
    """The shared Web API client, calling as one workspace's bot: every method of
    `AsyncWebClient` with that workspace's token (looked up at each call)."""

    def __init__(self, client: AsyncWebClient, tokens: Tokens, team: str) -> None:
        self._client = client
        self._tokens = tokens
        self.team = team

    def __getattr__(self, name: str):
        method = getattr(self._client, name)

        async def call(*args, **kwargs):
            return await method(*args, token=await self._tokens.token(self.team), **kwargs)

        return call
