"""A tiny platform, as a new one would be written: a settings section with its token,
and an adapter whose channel is in memory (what a test `say`s comes in as a message;
what the bot posts lands in `outbox`). The composition root would list it as
"loopback"."""
from __future__ import annotations

import asyncio
import re
from typing import ClassVar

from pydantic import SecretStr

from bot.core.commands import CommandSet
from bot.core.errors import UserError
from bot.core.feature import Platform
from bot.core.messages import Incoming
from bot.core.settings import Section, env
from bot.core.surface import Limits

_COMMAND = re.compile(r"^/([a-z][\w-]*)(?:\s+(.*))?$", re.DOTALL)


class LoopbackSettings(Section):
    title: ClassVar[str] = "Loopback (the tests' dummy platform)"

    token: SecretStr | None = env("LOOPBACK_TOKEN", None, description="set: the loopback platform runs")


class Loopback(Platform):
    name = "loopback"
    settings_model = LoopbackSettings

    @classmethod
    def configured(cls, section: LoopbackSettings) -> bool:
        return section.token is not None

    @classmethod
    def create(cls, section: LoopbackSettings, settings) -> "LoopbackAdapter":
        return LoopbackAdapter()


class LoopbackConversation:
    limits = Limits(max_chars=10_000, update_interval=0.0)

    def __init__(self, adapter: "LoopbackAdapter") -> None:
        self.adapter = adapter

    async def post(self, text: str, *, ephemeral: bool = False) -> str:
        self.adapter.outbox.append(text)
        return str(len(self.adapter.outbox) - 1)

    async def edit(self, message_id: str, text: str) -> None:
        self.adapter.outbox[int(message_id)] = text

    async def history(self, *, limit: int, since=None, scope="channel"):
        return []

    async def download(self, attachment):
        raise UserError("The loopback has no files.")


class LoopbackAdapter:
    name = "loopback"

    def __init__(self) -> None:
        self.outbox: list[str] = []
        self.commands = CommandSet()
        self.ready = asyncio.Event()
        self._closed = asyncio.Event()
        self._dispatch = None
        self._n = 0

    async def start(self, dispatch, *, commands: CommandSet = CommandSet()) -> None:
        self._dispatch, self.commands = dispatch, commands
        self.ready.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def stop(self) -> None:
        self._closed.set()

    def conversation(self, *, tenant: str, channel: str, thread: str | None = None) -> LoopbackConversation:
        return LoopbackConversation(self)

    async def say(self, text: str, **fields) -> list[str]:
        """One message from a person; what the bot posted in answer."""
        self._n += 1
        m = _COMMAND.match(text)
        common = dict(platform="loopback", tenant="L1", channel="C1", user="U1", id=f"l{self._n}", **fields)
        if m:
            msg = Incoming(command=m.group(1), text=(m.group(2) or "").strip(), **common)
        else:
            msg = Incoming(text=text.removeprefix("@bot").strip(), mentioned=text.startswith("@bot"), **common)
        before = len(self.outbox)
        await self._dispatch(msg, LoopbackConversation(self))
        return self.outbox[before:]


PLATFORM = Loopback
