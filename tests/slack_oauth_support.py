"""The bot serving many Slack workspaces (OAuth distribution, HTTP mode) on the fake
Slack, and the steps of an install as a browser and Slack make them."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from urllib.parse import parse_qs, urlparse

import aiohttp
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from adapters.slack.adapter import SlackAdapter
from adapters.slack.settings import SlackSettings
from tests.slack_support import load

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
KEY = Fernet.generate_key().decode()


def signed(body: str) -> dict:
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig, "Content-Type": "application/json"}


class Distributed:
    """The bot in OAuth mode behind its HTTP server, and a browser."""

    def __init__(self, app, adapter: SlackAdapter, fake, session: aiohttp.ClientSession) -> None:
        self.app, self.adapter, self.fake, self.session = app, adapter, fake, session
        self.base = f"http://127.0.0.1:{app.http.bound_port}"
        self._n = 0

    async def start_install(self) -> tuple[str, str]:
        """GET /slack/install: the Add to Slack link (with its state) and Bolt's state cookie."""
        async with self.session.get(f"{self.base}/slack/install", allow_redirects=False) as resp:
            page = await resp.text()
            cookie = resp.headers.get("Set-Cookie", "")
        link = re.search(r'<a href="([^"]+)"', page).group(1).replace("&amp;", "&")
        return link, cookie.split(";")[0]

    async def finish_install(self, code: str, state: str, cookie: str) -> tuple[int, str]:
        """Slack redirects the installer's browser back with the code and the state."""
        async with self.session.get(f"{self.base}/slack/oauth_redirect", params={"code": code, "state": state},
                                    headers={"Cookie": cookie}, allow_redirects=False) as resp:
            return resp.status, await resp.text()

    async def install(self, team: str) -> str:
        link, cookie = await self.start_install()
        state = parse_qs(urlparse(link).query)["state"][0]
        status, page = await self.finish_install(self.fake.approve(team), state, cookie)
        assert status == 200, page
        return self.fake.token_of(team)

    async def mention(self, team: str, text: str, *, channel: str = "C123ABC456") -> None:
        ws = self.fake.workspaces[self.fake.token_of(team)]
        self._n += 1
        payload = load("app_mention", event_id=f"Ev{team}{self._n}", user="U061F7AUR", channel=channel,
                       text=f"<@{ws.bot_user}> {text}", ts=self.fake.next_ts())
        payload["team_id"] = team
        await self.post(payload)

    async def post(self, payload: dict) -> None:
        self.fake.deliver(payload)
        body = json.dumps(payload)
        async with self.session.post(f"{self.base}/slack/events", data=body, headers=signed(body)) as resp:
            assert resp.status == 200, await resp.text()
        await asyncio.sleep(0.05)
        await self.adapter.idle()
        await self.app.router.drain()


def oauth_settings(fake, **overrides) -> SlackSettings:
    values = dict(client_id=fake.client_id, client_secret=SecretStr(fake.client_secret), signing_secret=SecretStr(SECRET),
                  installation_key=SecretStr(KEY), api_url=fake.base_url, http_port=0,
                  authorize_url=f"{fake.origin}/oauth/v2/authorize", update_interval=0.05)
    values.update(overrides)
    return SlackSettings.load(env_file=None, **values)


@pytest.fixture
async def distributed(app, fake_slack):
    settings = oauth_settings(fake_slack)
    app.settings = app.settings.model_copy(update=dict(http_port=None)).with_sections(settings)
    adapter = SlackAdapter(settings=settings)
    serving = asyncio.create_task(app.serve([adapter]))
    while app.http is None or app.http.bound_port is None or adapter._dispatch is None:
        await asyncio.sleep(0.01)
    async with aiohttp.ClientSession() as session:
        yield Distributed(app, adapter, fake_slack, session)
    await adapter.stop()
    await serving
