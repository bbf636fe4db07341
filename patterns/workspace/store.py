"""Per-workspace and per-channel settings in PostgreSQL, every change in the audit log
in the same transaction (tables from migration 0010)."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from bot.core.messages import Incoming
from bot.core.preferences import Preferences

WORKSPACE = ""  # the channel column of a workspace-wide setting
FRESH_SECONDS = 30.0  # another process's change is seen within this; this process's at once
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    at: datetime
    actor: str
    actor_name: str
    channel: str
    key: str
    old: str | None
    new: str | None


class SettingsStore:
    """Implements `bot.core.preferences.PreferenceLookup`, plus changing and auditing."""

    def __init__(self, db, *, fresh_seconds: float = FRESH_SECONDS) -> None:
        self.db = db
        self.fresh_seconds = fresh_seconds
        # (platform, tenant) -> (read at, {channel or WORKSPACE: values}): every message reads
        # its workspace's settings, so a workspace's are read whole (all its channels in one
        # query: a mention in another channel needs no query) and kept briefly
        self._known: dict[tuple[str, str], tuple[float, dict[str, dict[str, str]]]] = {}

    def forget(self, platform: str, tenant: str) -> None:
        """Drop what this process knows of a workspace's settings (after a change)."""
        self._known.pop((platform, tenant), None)

    async def values(self, *, platform: str, tenant: str, channel: str | None = None) -> dict[str, dict[str, str]]:
        """{"": workspace values, channel: that channel's own} (only what is set). While
        the database is unreachable the last values read are used (defaults if none)."""
        scopes = [WORKSPACE] if channel is None else [WORKSPACE, channel]
        key = (platform, tenant)
        known = self._known.get(key)
        if known is None or time.monotonic() - known[0] >= self.fresh_seconds:
            try:
                async with self.db.session.autocommit() as s:  # one read: no transaction around it
                    rows = (await s.execute(
                        text("SELECT channel, key, value FROM workspace_settings WHERE platform = :p AND tenant = :t"),
                        dict(p=platform, t=tenant))).all()
            except Exception as exc:  # an outage must not stop answers: answer with what is known
                log.warning("workspace settings unreadable (%s); using %s", type(exc).__name__,
                            "the last values read" if known else "the defaults")
                if known is None:
                    return {scope: {} for scope in scopes}
            else:
                everything: dict[str, dict[str, str]] = {}
                for r in rows:
                    everything.setdefault(r.channel, {})[r.key] = r.value
                if len(self._known) > 10_000:
                    self._known.clear()
                known = self._known[key] = (time.monotonic(), everything)
        return {scope: dict(known[1].get(scope, {})) for scope in scopes}

    async def for_message(self, msg: Incoming) -> Preferences:
        found = await self.values(platform=msg.platform, tenant=msg.tenant, channel=msg.channel)
        return apply({**found[WORKSPACE], **found.get(msg.channel, {})}, found[WORKSPACE], msg)

    async def set(self, *, platform: str, tenant: str, channel: str, key: str, value: str | None,
                  actor: str, actor_name: str = "") -> str | None:
        """Set (or, with value None, reset) one setting; returns the value it had."""
        where = dict(p=platform, t=tenant, c=channel, k=key)
        async with self.db.session.begin() as s:
            old = (await s.execute(text(
                "SELECT value FROM workspace_settings WHERE platform = :p AND tenant = :t AND channel = :c AND key = :k "
                "FOR UPDATE"), where)).scalar()
            if value is None:
                await s.execute(text(
                    "DELETE FROM workspace_settings WHERE platform = :p AND tenant = :t AND channel = :c AND key = :k"), where)
            else:
                await s.execute(text(
                    "INSERT INTO workspace_settings (platform, tenant, channel, key, value, updated_by) "
                    "VALUES (:p, :t, :c, :k, :v, :u) ON CONFLICT (platform, tenant, channel, key) "
                    "DO UPDATE SET value = EXCLUDED.value, updated_by = EXCLUDED.updated_by, updated_at = now()"),
                    dict(where, v=value, u=actor[:200]))
            if old != value:
                await s.execute(text(
                    "INSERT INTO settings_audit (platform, tenant, channel, key, old_value, new_value, actor, actor_name) "
                    "VALUES (:p, :t, :c, :k, :old, :new, :u, :n)"),
                    dict(where, old=old, new=value, u=actor[:200], n=actor_name[:200]))
        self.forget(platform, tenant)
        return old

    async def audit(self, *, platform: str, tenant: str, limit: int = 20) -> list[Change]:
        """The latest changes in a workspace, newest first."""
        async with self.db.session() as s:
            rows = (await s.execute(text(
                "SELECT at, actor, actor_name, channel, key, old_value, new_value FROM settings_audit "
                "WHERE platform = :p AND tenant = :t ORDER BY at DESC, id DESC LIMIT :n"),
                dict(p=platform, t=tenant, n=limit))).all()
        return [Change(*r) for r in rows]


async def _rows(db, sql: str, platform: str, tenant: str) -> list[dict]:
    async with db.session() as s:
        rows = (await s.execute(text(sql), dict(p=platform, t=tenant))).mappings().all()
    return [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()} for r in rows]


async def export_tenant(db, platform: str, tenant: str) -> dict:
    return {
        "values": await _rows(db, "SELECT channel, key, value, updated_by, updated_at FROM workspace_settings "
                                  "WHERE platform = :p AND tenant = :t ORDER BY channel, key", platform, tenant),
        "audit": await _rows(db, "SELECT at, actor, actor_name, channel, key, old_value, new_value FROM settings_audit "
                                 "WHERE platform = :p AND tenant = :t ORDER BY id", platform, tenant),
    }


async def delete_tenant(db, platform: str, tenant: str) -> dict[str, int]:
    where = dict(p=platform, t=tenant)
    async with db.session.begin() as s:
        values = (await s.execute(text("DELETE FROM workspace_settings WHERE platform = :p AND tenant = :t"), where)).rowcount
        audit = (await s.execute(text("DELETE FROM settings_audit WHERE platform = :p AND tenant = :t"), where)).rowcount
    return {"settings": values, "settings audit entries": audit}


def apply(values: dict[str, str], workspace: dict[str, str], msg: Incoming) -> Preferences:
    """Preferences from stored values (a channel's over its workspace's)."""
    allow = [c for c in workspace.get("channels_allow", "").split(",") if c]
    deny = [c for c in workspace.get("channels_deny", "").split(",") if c]
    here = msg.is_dm or ((not allow or msg.channel in allow) and msg.channel not in deny)
    budget = values.get("monthly_budget_usd")
    return Preferences(
        persona=values.get("persona"),
        language=values.get("language"),
        chat_model=values.get("chat_model"),
        fast_model=values.get("fast_model"),
        auto_route=values.get("auto_route", "on") == "on",
        answers_here=here,
        digest_time=workspace.get("digest_time"),
        digest_tz=workspace.get("digest_tz"),
        monthly_budget_usd=float(budget) if budget is not None else None,
        web_search=values.get("web_search", "on") == "on",
        assistant_prompts=workspace.get("assistant_prompts"),
    )
