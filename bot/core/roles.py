"""Who may do what: workspace admins, and the bot's own admins.

A workspace admin is whoever the platform says manages the workspace (the adapter sets
`Incoming.is_admin`: Slack admins and owners from `users.info`, Discord members with
Manage Server, the operator on the console). The bot's admins are listed in
AIBOT_ADMINS as `platform:user` (any workspace) or `platform:tenant:user` (one
workspace); the router marks their messages as admin ones before any handler runs.

Every refusal is one sentence naming who can do it (`refusal`).
"""
from __future__ import annotations

from dataclasses import replace

from bot.core.errors import UserError
from bot.core.messages import Incoming

# who counts as a workspace admin, in each platform's words
_ADMINS = {
    "slack": "workspace admins and owners",
    "discord": "members with the Manage Server permission",
}


def who_can(platform: str) -> str:
    """The people who may do admin-only things on `platform`, in its own words."""
    return _ADMINS.get(platform, "workspace admins") + " (or the bot's admins)"


def refusal(platform: str, action: str) -> str:
    """One sentence: only the admins may do `action` (e.g. "use /aibot settings")."""
    return f"Only {who_can(platform)} can {action}."


def require_admin(msg: Incoming, action: str) -> None:
    """Raise the refusal for `action` unless `msg` comes from an admin."""
    if not msg.is_admin:
        raise UserError(refusal(msg.platform, action))


class BotAdmins:
    """The AIBOT_ADMINS list: `platform:user` or `platform:tenant:user`, comma-separated."""

    def __init__(self, spec: str | None) -> None:
        self.entries = frozenset(e.strip() for e in (spec or "").split(",") if e.strip())

    def __contains__(self, msg: Incoming) -> bool:
        return (f"{msg.platform}:{msg.user}" in self.entries
                or f"{msg.platform}:{msg.tenant}:{msg.user}" in self.entries)

    def mark(self, msg: Incoming) -> Incoming:
        """`msg` with `is_admin` set when its author is one of the bot's admins."""
        if msg.is_admin or not self.entries or msg not in self:
            return msg
        return replace(msg, is_admin=True)
