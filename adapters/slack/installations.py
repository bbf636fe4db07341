"""Slack installations in the bot's PostgreSQL, for Bolt's OAuth flow (many workspaces).

`SlackInstallations` implements slack_sdk's `AsyncInstallationStore`: each installation
(bot token, refresh token, scopes, ids) is one row whose secret part is encrypted with
Fernet under SLACK_INSTALLATION_KEY (several comma-separated keys rotate it: the first
encrypts, all decrypt). Rows are only appended; the newest row of a workspace is its
installation (a re-install or a rotated token adds a row and prunes the older ones).
`SlackOAuthStates` implements `AsyncOAuthStateStore`: one-time `state` values with an
expiry, consumed by the OAuth redirect.

Enterprise Grid: an org-wide install has `is_enterprise_install` and no team id; Bolt
finds it by enterprise id for events from any workspace of the org, and the tenant of
those events stays the workspace (`team_id`), so each workspace's data stays its own.
The database handle arrives with `attach` (the adapter is built before storage opens).
"""
from __future__ import annotations

import json
import logging
import secrets
from datetime import datetime, timedelta, timezone
from logging import Logger

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from sqlalchemy import text

from bot.core.errors import ConfigError

log = logging.getLogger(__name__)

KEY_HINT = ("set SLACK_INSTALLATION_KEY to a Fernet key, e.g. the output of "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'")


def cipher(keys: str) -> MultiFernet:
    """The Fernet cipher of SLACK_INSTALLATION_KEY (comma-separated keys: the first encrypts)."""
    try:
        return MultiFernet([Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()])
    except (ValueError, TypeError):
        raise ConfigError(f"SLACK_INSTALLATION_KEY is not a valid Fernet key: {KEY_HINT}") from None


class _Stored:
    db = None
    on_saved = None  # async (team id) -> None, after an installation is saved

    def attach(self, db) -> None:
        self.db = db

    def _session(self):
        if self.db is None:
            raise RuntimeError("the Slack installation store has no database yet")
        return self.db.session


class SlackInstallations(_Stored, AsyncInstallationStore):
    def __init__(self, *, client_id: str, keys: str) -> None:
        self.client_id = client_id
        self.cipher = cipher(keys)
        self._logger = log

    @property
    def logger(self) -> Logger:
        return self._logger

    # --- writing --------------------------------------------------------------------

    async def async_save(self, installation: Installation) -> None:
        blob = self.cipher.encrypt(json.dumps(vars(installation)).encode()).decode()
        row = dict(c=self.client_id, e=installation.enterprise_id, t=installation.team_id, u=installation.user_id,
                   org=bool(installation.is_enterprise_install), bot=installation.bot_token is not None, s=blob,
                   at=datetime.fromtimestamp(installation.installed_at, timezone.utc))
        async with self._session().begin() as s:
            new = (await s.execute(text(
                "INSERT INTO slack_installations (client_id, enterprise_id, team_id, user_id, is_enterprise_install, "
                "has_bot, secret, installed_at) VALUES (:c, :e, :t, :u, :org, :bot, :s, :at) RETURNING id"), row)).scalar()
            # older rows of the same workspace and installer hold old tokens: keep only the newest
            await s.execute(text(
                "DELETE FROM slack_installations WHERE client_id = :c AND enterprise_id IS NOT DISTINCT FROM :e "
                "AND team_id IS NOT DISTINCT FROM :t AND user_id IS NOT DISTINCT FROM :u AND id < :id"),
                dict(row, id=new))
        log.info("Slack installation saved for team %s (enterprise %s)", installation.team_id, installation.enterprise_id)
        if self.on_saved is not None and installation.team_id:
            await self.on_saved(installation.team_id)

    async def async_save_bot(self, bot: Bot) -> None:
        """A rotated bot token: the workspace's installation with the new bot fields."""
        found = await self.async_find_installation(enterprise_id=bot.enterprise_id, team_id=bot.team_id,
                                                   is_enterprise_install=bot.is_enterprise_install)
        if found is None:
            return
        data = vars(found) | dict(bot_token=bot.bot_token, bot_refresh_token=bot.bot_refresh_token,
                                  bot_token_expires_at=bot.bot_token_expires_at, bot_scopes=bot.bot_scopes)
        await self.async_save(Installation(**data))

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        # the bot is the only thing this app installs: its rows go, tokens and all
        await self.async_delete_installation(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(self, *, enterprise_id: str | None, team_id: str | None,
                                        user_id: str | None = None) -> None:
        mine = "" if user_id is None else " AND user_id = :u"
        async with self._session().begin() as s:
            gone = (await s.execute(text(
                "DELETE FROM slack_installations WHERE client_id = :c AND enterprise_id IS NOT DISTINCT FROM :e "
                f"AND team_id IS NOT DISTINCT FROM :t{mine}"),
                dict(c=self.client_id, e=enterprise_id, t=team_id, u=user_id))).rowcount
        log.info("Slack installation of team %s deleted (%d rows)", team_id, gone)

    # --- reading --------------------------------------------------------------------

    async def async_find_bot(self, *, enterprise_id: str | None, team_id: str | None,
                             is_enterprise_install: bool | None = False) -> Bot | None:
        found = await self._newest(enterprise_id, team_id, is_enterprise_install, bot=True)
        return found.to_bot() if found is not None else None

    async def async_find_installation(self, *, enterprise_id: str | None, team_id: str | None,
                                      user_id: str | None = None,
                                      is_enterprise_install: bool | None = False) -> Installation | None:
        found = await self._newest(enterprise_id, team_id, is_enterprise_install, user=user_id)
        if found is not None and user_id is not None and found.bot_token is None:
            bot = await self._newest(enterprise_id, team_id, is_enterprise_install, bot=True)
            if bot is not None:  # the installer's row without a bot: the workspace's bot token with it
                found = Installation(**(vars(found) | {k: getattr(bot, k) for k in (
                    "bot_token", "bot_id", "bot_user_id", "bot_scopes", "bot_refresh_token", "bot_token_expires_at")}))
        return found

    async def teams(self) -> list[str]:
        """The workspaces with a bot installed."""
        async with self._session()() as s:
            rows = (await s.execute(text(
                "SELECT DISTINCT team_id FROM slack_installations WHERE client_id = :c AND has_bot AND team_id IS NOT NULL"),
                dict(c=self.client_id))).all()
        return sorted(r[0] for r in rows)

    async def _newest(self, enterprise_id, team_id, org, *, bot: bool = False, user: str | None = None):
        if org:
            team_id = None  # an org-wide install is the enterprise's, whatever workspace asks
        cond = " AND has_bot" if bot else ""
        cond += " AND user_id = :u" if user is not None else ""
        async with self._session()() as s:
            row = (await s.execute(text(
                "SELECT secret FROM slack_installations WHERE client_id = :c AND enterprise_id IS NOT DISTINCT FROM :e "
                f"AND team_id IS NOT DISTINCT FROM :t{cond} ORDER BY id DESC LIMIT 1"),
                dict(c=self.client_id, e=enterprise_id, t=team_id, u=user))).first()
        if row is None:
            return None
        try:
            return Installation(**json.loads(self.cipher.decrypt(row[0].encode())))
        except InvalidToken:
            log.error("a Slack installation of team %s cannot be decrypted: was SLACK_INSTALLATION_KEY changed "
                      "without keeping the old key after the new one?", team_id)
            return None


class SlackOAuthStates(_Stored, AsyncOAuthStateStore):
    """One-time OAuth `state` values in PostgreSQL (any process of the bot may finish a flow)."""

    def __init__(self, *, expiration_seconds: int = 600) -> None:
        self.expiration = timedelta(seconds=expiration_seconds)

    @property
    def logger(self) -> Logger:
        return log

    async def async_issue(self, *args, **kwargs) -> str:
        state = secrets.token_urlsafe(32)
        async with self._session().begin() as s:
            await s.execute(text("DELETE FROM slack_oauth_states WHERE expires_at < now()"))
            await s.execute(text("INSERT INTO slack_oauth_states (state, expires_at) VALUES (:s, :x)"),
                            dict(s=state, x=datetime.now(timezone.utc) + self.expiration))
        return state

    async def async_consume(self, state: str) -> bool:
        async with self._session().begin() as s:
            found = (await s.execute(text(
                "DELETE FROM slack_oauth_states WHERE state = :s RETURNING expires_at > now()"), dict(s=state))).scalar()
        return bool(found)
