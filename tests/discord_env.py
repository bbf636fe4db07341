"""Shared setup for the Discord tests: the fake Discord, and the real adapter (discord.py)
connected to it in front of the composed bot."""
from __future__ import annotations

import asyncio
import time

import pytest

from adapters.discord.adapter import DiscordAdapter
from tests.fakes.discord_server import FakeDiscord


async def connect(app, fake: FakeDiscord, **kw) -> DiscordAdapter:
    adapter = DiscordAdapter(token="test-token-not-real", api_url=fake.api_url, ready_timeout=15, guild_ready_timeout=0.05, **kw)
    await app.attach(adapter)  # as `aibot run` does: the declared commands become its tree
    return adapter


async def settle(app, fake: FakeDiscord, *, quiet: float = 0.2, timeout: float = 30) -> None:
    """Wait until the bot has answered everything and made no REST call for `quiet` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await app.router.drain()
        n = len(fake.calls)
        await asyncio.sleep(quiet)
        if len(fake.calls) == n and app.router.in_flight == 0:
            return
    raise AssertionError("the bot did not settle")


BOT = f"<@{FakeDiscord.BOT_ID}>"


@pytest.fixture
async def fake():
    async with FakeDiscord() as fake:
        yield fake


@pytest.fixture
async def discord_bot(app, fake):
    adapter = await connect(app, fake)
    yield adapter
    await adapter.stop()
