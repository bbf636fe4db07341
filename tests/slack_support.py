"""Fixtures for the Slack tests: the fake Slack, and the real adapter (slack-bolt +
slack_sdk) connected to it in Socket Mode, feeding the bot composed as `aibot run` does.

Import the fixtures into a test module: `from tests.slack_support import *  # noqa`.
"""
from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from adapters.slack.adapter import SlackAdapter
from adapters.slack.settings import SlackSettings
from tests.fakes.slack_server import APP_TOKEN, BOT_TOKEN, FakeSlack

FIXTURES = Path(__file__).parent / "fixtures" / "slack"

__all__ = ["fake_slack", "slack_settings", "slack", "SlackBot", "load"]


def load(name: str, *, event_id: str | None = None, **event_overrides) -> dict:
    """A payload fixture (shaped like Slack's documented examples), `event` fields overridden."""
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    if event_id:
        data["event_id"] = event_id
    if event_overrides:
        target = data["event"] if "event" in data else data
        target.update(copy.deepcopy(event_overrides))
    return data


class SlackBot:
    """The bot on a fake Slack: send payloads, wait until every answer is finished."""

    def __init__(self, app, adapter: SlackAdapter, fake: FakeSlack, *, connection: int = -1) -> None:
        self.app = app
        self.adapter = adapter
        self.fake = fake
        self.connection = connection  # its Socket Mode connection, when several bots share the fake
        self._expected = 0

    async def event(self, payload: dict, *, retry_attempt: int = 0, settle: bool = True) -> str:
        env = await self.fake.send_event(payload, retry_attempt=retry_attempt, connection=self.connection)
        self._expected += 1
        if settle:
            await self.settle()
        return env

    async def command(self, name: str, text: str = "", *, settle: bool = True, **fields) -> str:
        payload = load("slash_command")
        payload.update(command=name, text=text, response_url=self.fake.response_url(),
                       trigger_id=f"trig-{self._expected}-{name}", **fields)
        env = await self.fake.send_command(payload)
        self._expected += 1
        if settle:
            await self.settle()
        return env

    async def interactive(self, payload: dict, *, settle: bool = True) -> str:
        """An interactivity payload (shortcut, button, ...) over Socket Mode."""
        env = await self.fake.send_envelope("interactive", payload, connection=self.connection)
        self._expected += 1
        if settle:
            await self.settle()
        return env

    async def settle(self, timeout: float = 15.0) -> None:
        """Wait until every payload sent was handed to the core and fully answered."""
        await self.fake.wait_for(lambda: self.adapter.handled >= self._expected, timeout=timeout)
        await asyncio.wait_for(self.adapter.idle(), timeout)
        await asyncio.wait_for(self.app.router.drain(), timeout)


@pytest.fixture
async def fake_slack():
    fake = await FakeSlack().start()
    yield fake
    await fake.stop()


@pytest.fixture
def slack_settings(fake_slack) -> SlackSettings:
    """Slack's settings section, pointed at the fake Slack (Socket Mode)."""
    return SlackSettings.load(
        env_file=None, bot_token=SecretStr(BOT_TOKEN), app_token=SecretStr(APP_TOKEN),
        api_url=fake_slack.base_url, update_interval=0.05,
    )


@pytest.fixture
async def slack(app, fake_slack, slack_settings):
    adapter = SlackAdapter(settings=slack_settings)
    await app.attach(adapter)  # as `aibot run` does
    await fake_slack.wait_connected()
    bot = SlackBot(app, adapter, fake_slack)
    yield bot
    await app.router.drain()
    await adapter.stop()
