"""Reaching a channel without an incoming message (scheduled digests, job results).

Each running adapter registers how to open a `Conversation` for one of its channels;
patterns ask by platform, so they never import an adapter."""
from __future__ import annotations

from collections.abc import Callable

from bot.core.surface import Conversation

Opener = Callable[..., Conversation]  # (tenant=, channel=, thread=) -> Conversation


class Channels:
    def __init__(self) -> None:
        self._openers: dict[str, Opener] = {}

    def register(self, platform: str, opener: Opener) -> None:
        self._openers[platform] = opener

    @property
    def platforms(self) -> list[str]:
        return sorted(self._openers)

    def open(self, platform: str, *, tenant: str, channel: str, thread: str | None = None) -> Conversation:
        """A conversation in `channel` of `platform`; KeyError if that platform is not running."""
        try:
            opener = self._openers[platform]
        except KeyError:
            raise KeyError(f"platform {platform!r} is not running here") from None
        return opener(tenant=tenant, channel=channel, thread=thread)
