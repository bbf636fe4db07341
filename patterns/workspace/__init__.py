"""Workspace settings: what each workspace (and channel) chose for the bot, changed from
chat by its admins and recorded in an audit log.

- `/aibot settings show|set KEY VALUE|reset KEY`: the whole workspace;
  `/aibot channel ...`: this channel's own (persona, language, models, auto-routing);
  `/aibot audit`: who changed what, when; `/aibot export` and `/aibot delete-data`: the
  workspace's data on request. All admin-only (`bot.core.roles`).
- The store is the core's `services.prefs`: chat reads its system prompt, language and
  model from it, the routers their auto-routing switch, `/digest on` its default time;
  a change counts from the next message (nothing is cached).
- Removed tenants' data is deleted when their grace period is over (`lifecycle`), and
  `aibot tenant export|delete|status` does it from the command line (`cli`).
- The channel allow-list / deny-list is enforced here, by the first answerer: a mention
  in a channel the bot may not answer in gets one sentence saying so.
"""
from __future__ import annotations

import json
from datetime import timezone
from typing import Literal

from bot.core.commands import Group, answerer, command
from bot.core.errors import UserError
from bot.core.feature import Feature
from bot.core.messages import Incoming, Reply
from bot.core.tenants import TenantData
from patterns.workspace.keys import KEYS, key as find_key
from patterns.workspace import store as settings_data
from patterns.workspace.lifecycle import Sweeper
from patterns.workspace.store import WORKSPACE, Change, SettingsStore

SHOWN = 120  # characters of a long value (a persona) shown in lists
EXPORT_IN_CHAT = 3_000  # longest export posted in the chat itself


class Workspace(Feature):
    name = "workspace"
    groups = (Group("aibot", description="This workspace's settings, audit log and data (admins)"),)

    def __init__(self, host) -> None:
        super().__init__(host)
        self.store = SettingsStore(self.services.db)
        self.services.prefs = self.store
        self.tenants = self.services.tenants
        self.sweeper: Sweeper | None = None
        if self.tenants is not None:  # a tenant's settings go with its export / deletion
            db = self.services.db
            self.tenants.register("settings", TenantData(
                export=lambda p, t: settings_data.export_tenant(db, p, t),
                delete=self._delete_settings))

    async def _delete_settings(self, platform: str, tenant: str) -> dict[str, int]:
        deleted = await settings_data.delete_tenant(self.services.db, platform, tenant)
        self.store.forget(platform, tenant)
        return deleted

    async def start(self) -> None:
        if self.tenants is not None:
            self.sweeper = Sweeper(tenants=self.tenants)
            self.sweeper.start()

    async def stop(self) -> None:
        if self.sweeper is not None:
            await self.sweeper.stop()
            self.sweeper = None

    @classmethod
    def add_cli(cls, cli) -> None:
        from patterns.workspace import cli as commands

        commands.add(cli)

    # --- where the bot answers ------------------------------------------------------

    @answerer
    async def channel_gate(self, ctx, msg: Incoming):
        """Mentions in a channel the workspace's allow-/deny-list excludes: one sentence, no answer."""
        if (await self.store.for_message(msg)).answers_here:
            return None
        if not msg.mentioned:
            return ""  # a follow-up in a thread: stay quiet
        return Reply("I don't answer in this channel (a workspace admin chose the channels with /aibot settings); "
                     "ask me in a DM or in one of those channels.", ephemeral=True)

    # --- commands -------------------------------------------------------------------

    @command("aibot settings", description="Show or change this workspace's settings (admins)",
             usage="/aibot settings [show | set KEY VALUE | reset KEY]", ephemeral=True, admin_only=True, default=True)
    async def workspace_settings(self, ctx, msg: Incoming, action: Literal["show", "set", "reset"] = "show",
                                 key: str = "", value: str = "") -> str:
        """action: show them, set one, or reset one to the default
        key: the setting, e.g. persona, language, chat_model, channels_allow
        value: its new value"""
        return await self._settings(msg, WORKSPACE, action, key, value)

    @command("aibot channel", description="Show or change this channel's own settings (admins)",
             usage="/aibot channel [show | set KEY VALUE | reset KEY]", ephemeral=True, admin_only=True)
    async def channel_settings(self, ctx, msg: Incoming, action: Literal["show", "set", "reset"] = "show",
                               key: str = "", value: str = "") -> str:
        """action: show them, set one, or reset one to the workspace's
        key: the setting, e.g. persona, language, chat_model
        value: its new value"""
        return await self._settings(msg, msg.channel, action, key, value)

    @command("aibot audit", description="Who changed which setting, and when (admins)", ephemeral=True,
             admin_only=True)
    async def audit(self, ctx, msg: Incoming) -> str:
        changes = await self.store.audit(platform=msg.platform, tenant=msg.tenant)
        if not changes:
            return "No settings have been changed in this workspace yet."
        return "Latest settings changes (newest first):\n" + "\n".join(describe(c) for c in changes)

    @command("aibot export", description="This workspace's documents, settings, schedules and usage as JSON (admins)",
             ephemeral=True, admin_only=True)
    async def export(self, ctx, msg: Incoming) -> str:
        data = await self._tenants().export(msg.platform, msg.tenant)
        blob = json.dumps(data, indent=1, ensure_ascii=False, default=str)
        summary = ", ".join(f"{len(v) if isinstance(v, list) else sum(map(len, v.values()))} {k}"
                            for k, v in data.items() if isinstance(v, (list, dict)))
        if len(blob) <= EXPORT_IN_CHAT:
            return f"This workspace's data ({summary}):\n```\n{blob}\n```"
        return (f"This workspace holds {summary}: {len(blob):,} characters of JSON, too long for a chat message. "
                f"The bot's operator can hand it over with `aibot tenant export {msg.platform}:{msg.tenant}`.")

    @command("aibot delete-data", description="Delete all of this workspace's data now (admins)", ephemeral=True,
             admin_only=True, usage="/aibot delete-data [WORKSPACE-ID to confirm]")
    async def delete_data(self, ctx, msg: Incoming, confirm: str = "") -> str:
        """confirm: this workspace's id, to confirm"""
        if confirm.strip() != msg.tenant:
            return (f"This deletes every document, setting, audit entry, digest schedule and usage record of this "
                    f"workspace, for good. To go ahead: `/aibot delete-data {msg.tenant}`.")
        counts = await self._tenants().delete(msg.platform, msg.tenant,
                                              reason=f"/aibot delete-data by {msg.user_name or msg.user} ({msg.user})")
        return "Deleted: " + (", ".join(f"{n} {what}" for what, n in counts.items()) or "nothing") + "."

    def _tenants(self):
        if self.tenants is None:
            raise UserError("Data export and deletion are not available in this build.")
        return self.tenants

    async def _settings(self, msg: Incoming, channel: str, action: str, name: str, value: str) -> str:
        scope = "this channel" if channel else "this workspace"
        if action == "show":
            return await self._show(msg, channel)
        if not name:
            raise UserError(f"Say which setting, e.g. `/aibot {'channel' if channel else 'settings'} {action} language"
                            f"{' French' if action == 'set' else ''}`. Settings: {', '.join(KEYS)}.")
        k = find_key(name, channel=bool(channel))
        where = dict(platform=msg.platform, tenant=msg.tenant, channel=channel, key=k.name,
                     actor=msg.user, actor_name=msg.user_name or "")
        if action == "reset":
            old = await self.store.set(**where, value=None)
            if old is None:
                return f"`{k.name}` was not set for {scope}; nothing changed."
            default = "the workspace's" if channel else "the default"
            return f"`{k.name}` for {scope} is back to {default}."
        if not value.strip():
            raise UserError(f"Give `{k.name}` a value, e.g. `/aibot {'channel' if channel else 'settings'} set "
                            f"{k.name} {k.example}`.")
        checked = k.check(value)
        await self.store.set(**where, value=checked)
        return f"`{k.name}` for {scope} is now {short(checked)}. It counts from the next message."

    async def _show(self, msg: Incoming, channel: str) -> str:
        found = await self.store.values(platform=msg.platform, tenant=msg.tenant, channel=channel or None)
        if channel:
            own = found.get(channel, {})
            lines = ["This channel's own settings (the workspace's apply to the rest):"]
            lines += [f"• `{k}`: {short(v)}" for k, v in sorted(own.items())] or ["• none"]
            return "\n".join(lines)
        values = found[WORKSPACE]
        lines = ["This workspace's settings (change one with `/aibot settings set KEY VALUE`):"]
        for k in KEYS.values():
            shown = short(values[k.name]) if k.name in values else "default"
            lines.append(f"• `{k.name}`: {shown} ({k.description})")
        return "\n".join(lines)


def short(value: str) -> str:
    flat = " ".join(value.split())
    return f"“{flat[:SHOWN]}…”" if len(flat) > SHOWN else f"“{flat}”"


def describe(c: Change) -> str:
    who = c.actor_name or c.actor
    where = f" in channel {c.channel}" if c.channel else ""
    what = f"reset `{c.key}`" if c.new is None else f"set `{c.key}` to {short(c.new)}"
    return f"{c.at.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC: {who} ({c.actor}) {what}{where}"


FEATURE = Workspace
