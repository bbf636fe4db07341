"""Slack's HTTP-mode requests, acknowledged on the HTTP front door's own thread
(`bot.core.front`) so that a busy main loop never makes Slack wait: an event not
acknowledged within 3 s is delivered again, and an app whose deliveries keep failing has
its event subscriptions disabled, exactly when the bot is busiest.

Each request's signature is checked here first (slack_sdk's `SignatureVerifier`: the
secret and a timestamp within 5 minutes); a bad one is answered 401 and goes no further.
Then:

- an Events API delivery (`event_callback`) is answered 200 at once and handed to the
  main loop, where Bolt dispatches it as usual; Bolt's own acknowledgement is then
  redundant. A retry (`X-Slack-Retry-Num`) of an event this process already took is
  acknowledged and dropped here; the router's dedupe still catches the rest (another
  process's deliveries);
- `url_verification` is answered with its challenge;
- slash commands and interactivity, whose acknowledgement carries a body (a command's
  reply, a view submission's `response_action`), wait for Bolt on the main loop;
- once the adapter is stopping, deliveries are answered 503, so that Slack delivers them
  again later (to another process, or to this one restarted) instead of being taken by
  a process that will not answer them.

The main loop dispatches what was verified here as Bolt's "socket_mode" requests: the
mode Bolt uses for requests verified by their transport, so it does not check the
signature again (a delivery that waited in a long backlog would fail its 5 minutes).
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier

from bot.core.front import on_loop

log = logging.getLogger(__name__)

RECENT_EVENTS = 10_000  # event ids remembered, to drop a retry of an event already taken
INVALID = {"error": "invalid request"}  # Bolt's answer to a bad signature

Dispatch = Callable[[str | dict, dict], Awaitable[BoltResponse]]  # (body, headers), on the main loop


class SlackIntake:
    """`handle` is the POST handler of Slack's path, run on the front door's loop. `dispatch` runs on
    `loop` (the main loop) and returns Bolt's response; `track` keeps its task so that the
    adapter's `idle` waits for it."""

    def __init__(self, *, signing_secret: str, loop: asyncio.AbstractEventLoop, dispatch: Dispatch,
                 track: Callable[[Awaitable], asyncio.Task]) -> None:
        self.verifier = SignatureVerifier(signing_secret)
        self.loop = loop
        self.dispatch = dispatch
        self.track = track
        self.acked = 0  # Events API deliveries acknowledged here (for tests and the benchmark)
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._handing = 0  # handed over, not yet a task on the main loop
        self._closing = False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        stamp = request.headers.get("X-Slack-Request-Timestamp")
        if not (stamp or "").strip().isdigit() or not self.verifier.is_valid(
                raw, stamp, request.headers.get("X-Slack-Signature")):
            return web.json_response(INVALID, status=401)
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = raw.decode("utf-8")
        if request.content_type == "application/json":
            try:
                payload = json.loads(body)
            except ValueError:
                return web.json_response(INVALID, status=400)
            kind = payload.get("type") if isinstance(payload, dict) else None
            if kind == "url_verification":
                return web.json_response({"challenge": payload.get("challenge")})
            if kind == "event_callback":
                return self._event(payload, headers)
        return await self._through_bolt(body, headers)

    def _event(self, payload: dict, headers: dict) -> web.Response:
        event_id = payload.get("event_id")
        with self._lock:
            if self._closing:
                return _busy()
            if event_id and event_id in self._recent:  # a retry of one already taken here
                log.info("Slack retried event %s (%s): taken already", event_id,
                         headers.get("x-slack-retry-reason", "no reason"))
                return web.Response(status=200)
            if event_id:
                self._recent[event_id] = None
                while len(self._recent) > RECENT_EVENTS:
                    self._recent.popitem(last=False)
            self._handing += 1
        if self._hand(payload, headers) is None:  # the main loop is gone: let Slack deliver it again
            with self._lock:
                self._recent.pop(event_id, None)
            return _busy()
        self.acked += 1
        return web.Response(status=200)

    def _hand(self, body: str | dict, headers: dict):
        """To the main loop (the caller counted it in `_handing`): a future of Bolt's
        response, or None when that loop is closed."""
        def start() -> asyncio.Task:
            try:
                task = self.track(self.dispatch(body, headers))
            finally:
                with self._lock:
                    self._handing -= 1
            task.add_done_callback(_log_failure)
            return task

        try:
            return on_loop(self.loop, start)
        except RuntimeError:
            with self._lock:
                self._handing -= 1
            return None

    async def _through_bolt(self, body: str, headers: dict) -> web.Response:
        """A command or an interaction: its acknowledgement is Bolt's response."""
        with self._lock:
            if self._closing:
                return _busy()
            self._handing += 1
        done = self._hand(body, headers)
        if done is None:
            return _busy()
        response: BoltResponse = await asyncio.wrap_future(done)
        out = web.Response(status=response.status, body=response.body.encode() if response.body else b"")
        for name, values in response.headers.items():
            if name.lower() in ("content-type", "x-slack-no-retry"):
                out.headers[name] = values[0] if isinstance(values, (list, tuple)) else values
        return out

    async def close(self) -> None:
        """Take no more deliveries (503: Slack sends them again) and wait until every one
        already acknowledged is a task of the adapter's (which `idle` then waits for)."""
        with self._lock:
            self._closing = True
        while True:
            with self._lock:
                if self._handing == 0:
                    return
            await asyncio.sleep(0.01)


def _busy() -> web.Response:
    return web.json_response({"error": "stopping"}, status=503, headers={"Retry-After": "60"})


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("dispatching a Slack delivery failed", exc_info=task.exception())
