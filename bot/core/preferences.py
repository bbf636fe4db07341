"""What a workspace (or one of its channels) chose for the bot: the small lookup the
patterns read at each message. The settings feature (`patterns.workspace`) stores them
and sets `services.prefs`; without it every workspace gets the operator's defaults.

Unset fields (None) mean "the deployment's default" (AIBOT_CHAT_MODEL, the built-in
system prompt, ...). A channel's own choice wins over the workspace's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.core.messages import Incoming


@dataclass(frozen=True)
class Preferences:
    persona: str | None = None  # the system prompt of chat answers
    language: str | None = None  # answers in this language, whatever the question's
    chat_model: str | None = None
    fast_model: str | None = None
    auto_route: bool = True  # mentions may go to the agent / the knowledge base on their own
    answers_here: bool = True  # the channel is allowed (allow-list / deny-list)
    digest_time: str | None = None  # `/digest on` without a time
    digest_tz: str | None = None
    monthly_budget_usd: float | None = None  # for the cost controls; None: no budget
    web_search: bool = True  # the agent may search the web (where the deployment turned it on)
    assistant_prompts: str | None = None  # Slack's assistant panel: `title => message; …` (None: the deployment's)


class PreferenceLookup(Protocol):
    async def for_message(self, msg: Incoming) -> Preferences:
        """The effective preferences where `msg` was said."""
        ...


class Defaults:
    """No settings feature: the deployment's defaults everywhere."""

    async def for_message(self, msg: Incoming) -> Preferences:
        return Preferences()
