"""Many workspaces: Bolt's OAuth flow and a bot token per workspace.

`oauth_settings` builds Bolt's `AsyncOAuthSettings` over the PostgreSQL stores
(`adapters.slack.installations`): `/slack/install` sends the installer to Slack with a
one-time `state`, `/slack/oauth_redirect` checks it (and Bolt's state cookie), exchanges
the code with `oauth.v2.access` and saves the installation, encrypted. Events are
authorized per workspace by Bolt from the store, rotating a bot token that is about to
expire (`oauth.v2.access` with its refresh token) through our Web API client, so that
SLACK_API_URL is honoured there too.

`Tokens` answers "which token for this workspace?" where no event is at hand (a digest,
a user's name): from the store, rotated the same way, remembered for a few seconds, and
forgotten at once when the workspace uninstalls or revokes the bot.
"""
from __future__ import annotations

import logging
import time

from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
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
                   client: AsyncWebClient) -> AsyncOAuthSettings:
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
    # Bolt's default authorizer rotates tokens with a client of its own (slack.com);
    # the same authorizer, given our client
    oauth.authorize = AsyncInstallationStoreAuthorize(
        logger=log, client_id=settings.client_id, client_secret=secret, installation_store=installations,
        token_rotation_expiration_minutes=settings.token_rotation_minutes, bot_only=True, client=client,
    )
    return oauth


class Tokens:
    """The bot token of each workspace, outside Bolt's per-event authorization."""

    def __init__(self, *, settings: SlackSettings, installations: SlackInstallations, client: AsyncWebClient) -> None:
        self.installations = installations
        self.minutes = settings.token_rotation_minutes
        self.rotator = AsyncTokenRotator(client_id=settings.client_id,
                                         client_secret=settings.client_secret.get_secret_value(), client=client)
        self._known: dict[str, tuple[str, float]] = {}  # team -> (token, until)
        self.enterprise: dict[str, str | None] = {}  # team -> enterprise id, as events tell it (Grid)

    def seen(self, team: str, token: str | None, enterprise: str | None) -> None:
        """What Bolt authorized an event of `team` with."""
        self.enterprise[team] = enterprise
        if token:
            self._known[team] = (token, time.monotonic() + TOKEN_TTL)

    def forget(self, team: str) -> None:
        self._known.pop(team, None)

    async def token(self, team: str) -> str:
        known = self._known.get(team)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        enterprise = self.enterprise.get(team)
        bot = await self.installations.async_find_bot(enterprise_id=enterprise, team_id=team)
        if bot is None and enterprise is not None:  # an org-wide install covers every workspace of the org
            bot = await self.installations.async_find_bot(enterprise_id=enterprise, team_id=None,
                                                          is_enterprise_install=True)
        if bot is None:
            self.forget(team)
            raise NotInstalled("The bot is not installed in this Slack workspace (any more).")
        if bot.bot_refresh_token is not None:
            fresh = await self.rotator.perform_bot_token_rotation(bot=bot, minutes_before_expiration=self.minutes)
            if fresh is not None:
                await self.installations.async_save_bot(fresh)
                bot = fresh
        self._known[team] = (bot.bot_token, time.monotonic() + TOKEN_TTL)
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
