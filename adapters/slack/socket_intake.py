"""Socket Mode envelopes, acknowledged on a thread and event loop of their own.

slack_sdk's aiohttp `SocketModeClient` runs there: it reads the WebSocket, and each
`events_api` envelope is acknowledged over it at once (Slack redelivers an envelope not
acknowledged within 3 s) and handed to Bolt on the main loop (`intake.Handoff`), as
Bolt's own Socket Mode handler would dispatch it. Slash commands and interactivity,
whose acknowledgement carries Bolt's response, wait for it, as they do with Bolt's
handler. Only the client's public interface is used (its request listeners and
`send_socket_mode_response`).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging

from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.intake import Handoff
from bot.core.front import LoopThread

log = logging.getLogger(__name__)


class SocketIntake:
    """One Socket Mode connection on its own thread; `connect` and `close` are called on
    the main loop."""

    def __init__(self, *, app_token: str, api_url: str | None, handoff: Handoff) -> None:
        self.app_token = app_token
        self.api_url = api_url
        self.handoff = handoff
        self._thread = LoopThread(name="slack-socket-intake", serve=self._serve)
        self._client: SocketModeClient | None = None

    async def connect(self) -> None:
        """Open the connection (raising what `apps.connections.open` raised)."""
        await self._thread.start()

    async def close(self) -> None:
        """Disconnect (Slack sends new envelopes to another connection, or again later), then
        wait until every envelope acknowledged is handed over."""
        await self._thread.stop()
        await self.handoff.close()

    # --- the intake thread --------------------------------------------------------------

    async def _serve(self, opened: concurrent.futures.Future, stopping: asyncio.Event) -> None:
        web = AsyncWebClient(**({"base_url": self.api_url} if self.api_url else {}))  # apps.connections.open only
        client = SocketModeClient(app_token=self.app_token, web_client=web, logger=log)
        client.socket_mode_request_listeners.append(self._on_request)
        self._client = client
        try:
            await client.connect()
            opened.set_result(None)
            await stopping.wait()
        finally:
            await client.close()

    async def _on_request(self, client: SocketModeClient, req: SocketModeRequest) -> None:
        headers = {}
        if req.retry_attempt:
            headers = {"x-slack-retry-num": str(req.retry_attempt), "x-slack-retry-reason": req.retry_reason or ""}
        if req.type == "events_api":
            if self.handoff.event(req.payload, headers):  # else stopping: no ack, Slack delivers it again
                await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        response = await self.handoff.response(req.payload, headers)
        if response is None:
            return
        if response.status != 200:
            log.info("Bolt answered a %s envelope %s", req.type, response.status)
            return
        payload = None
        if response.body:  # as Bolt's Socket Mode handler sends it
            content_type = (response.headers.get("content-type") or [""])[0]
            payload = json.loads(response.body) if content_type.startswith("application/json") else {"text": response.body}
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id, payload=payload))
