"""The settings a workspace admin may change from chat: each key's meaning, where it may
be set (the whole workspace, or one channel), and how a typed value is checked.

A value is checked once, when it is set, and stored as text; `Preferences` fields are
built from the stored text by `apply`.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.errors import UserError

_MODEL = re.compile(r"[\w.:/@+-]{1,200}")
_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
# a channel as the platform sends a mention of it (Slack's <#C0123|name>, Discord's <#123>), or its id
_CHANNEL = re.compile(r"<#([A-Za-z0-9]+)(?:\|[^>]*)?>|([A-Z0-9]+)")
_BOOLS = {"on": "on", "true": "on", "yes": "on", "off": "off", "false": "off", "no": "off"}


def _text(limit: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        value = value.strip()
        if len(value) > limit:
            raise UserError(f"That is {len(value):,} characters; the limit for this setting is {limit:,}.")
        return value

    return check


def _model(value: str) -> str:
    value = value.strip()
    if not _MODEL.fullmatch(value):
        raise UserError(f"`{value[:40]}` is not a model name (letters, digits and . : / @ + - _, e.g. gpt-4o-mini).")
    return value


def _switch(value: str) -> str:
    found = _BOOLS.get(value.strip().lower())
    if found is None:
        raise UserError("Use `on` or `off`.")
    return found


def _prompts(value: str) -> str:
    value = _text(2_000)(value)
    items = [p for p in value.split(";") if p.strip()]
    if not items or len(items) > 4 or any("=>" not in p or not all(x.strip() for x in p.split("=>", 1))
                                          for p in items):
        raise UserError("Give one to four prompts as `title => message`, separated by `;`, e.g. "
                        "`Ask the handbook => What does the handbook say about expenses?`.")
    return value


def _channels(value: str) -> str:
    ids = []
    for word in value.replace(",", " ").split():
        m = _CHANNEL.fullmatch(word)
        if m is None:
            raise UserError(f"`{word[:40]}` is not a channel: mention the channels (pick them after #) "
                            "or give their ids, separated by spaces.")
        ids.append(m.group(1) or m.group(2))
    if not ids:
        raise UserError("Mention the channels (pick them after #) or give their ids, separated by spaces.")
    return ",".join(dict.fromkeys(ids))


def _time(value: str) -> str:
    m = _TIME.fullmatch(value.strip())
    if not m:
        raise UserError("Give the time as HH:MM, e.g. 09:00.")
    return f"{int(m.group(1)):02d}:{m.group(2)}"


def _zone(value: str) -> str:
    value = value.strip()
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"`{value[:40]}` is not a time zone; use a name like Europe/Berlin or UTC.") from None
    return value


def _budget(value: str) -> str:
    try:
        amount = float(value.strip().lstrip("$"))
    except ValueError:
        raise UserError("Give the budget in US dollars, e.g. 50 or 12.5.") from None
    if not 0 <= amount <= 1_000_000:
        raise UserError("The budget is between 0 and 1,000,000 dollars a month.")
    return f"{amount:g}"


@dataclass(frozen=True)
class Key:
    name: str
    description: str
    check: Callable[[str], str]
    channel: bool  # may also be set for one channel
    example: str


KEYS: dict[str, Key] = {k.name: k for k in (
    Key("persona", "the system prompt of answers (who the bot is, how it answers)", _text(4_000), True,
        "You are Ada, the support team's assistant. Answer briefly and link the runbook."),
    Key("language", "answer in this language, whatever the question's", _text(40), True, "French"),
    Key("chat_model", "model for answers", _model, True, "gpt-4o"),
    Key("fast_model", "model for summaries and digests", _model, True, "gpt-4o-mini"),
    Key("auto_route", "mentions may go to the agent or the knowledge base on their own (on/off)", _switch, True, "off"),
    Key("channels_allow", "answer mentions only in these channels", _channels, False, "C0123ABCD C0456EFGH"),
    Key("channels_deny", "never answer mentions in these channels", _channels, False, "C0789IJKL"),
    Key("digest_time", "time of `/digest on` without a time", _time, False, "09:00"),
    Key("digest_tz", "time zone of `/digest on` without one", _zone, False, "Europe/Berlin"),
    Key("monthly_budget_usd", "model spend allowed per month, in US dollars", _budget, False, "50"),
    Key("assistant_prompts", "suggested prompts of Slack's assistant panel: `title => message` separated by `;` "
        "(at most 4)", _prompts, False, "Ask the handbook => What does the handbook say about expenses?"),
    Key("web_search", "the agent may search the web, where the deployment has it (AGENT_WEB_SEARCH) (on/off)",
        _switch, True, "off"),
)}


def key(name: str, *, channel: bool) -> Key:
    """The key `name`, or one sentence saying which keys there are."""
    found = KEYS.get(name.strip().lower().replace("-", "_"))
    if found is None:
        raise UserError(f"There is no setting `{name[:40]}`. Settings: {', '.join(KEYS)}.")
    if channel and not found.channel:
        raise UserError(f"`{found.name}` is set for the whole workspace: use `/aibot settings set {found.name} ...`.")
    return found


def table() -> str:
    """The settings keys as a Markdown table (docs/commands.md, kept current by cog)."""
    rows = ["| key | what it sets | where | example |", "|---|---|---|---|"]
    for k in KEYS.values():
        where = "workspace or channel" if k.channel else "workspace"
        rows.append(f"| `{k.name}` | {k.description} | {where} | `{k.example}` |")
    return "\n".join(rows)
