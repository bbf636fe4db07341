"""Slack's HTTP-mode requests, acknowledged on the HTTP front door's own thread
(`bot.core.front`) so that a busy main loop never makes Slack wait: an event not
acknowledged within 3 s is delivered again, and an app whose deliveries keep failing has
its event subscriptions disabled, exactly when the bot is busiest.

Each request's signature is checked here first (slack_sdk's `SignatureVerifier`: the
secret and a timestamp within 5 minutes); a bad one is answered 401 and goes no further.
Then:

- an Events API delivery (`event_callback`) is answered 200 at once and handed to the
  main loop, where Bolt dispatches it as usual; Bolt's own acknowledgement is then
  redundant. A retry (`X-Slack-Retry-Num`) goes the same way, and the router's dedupe
  (Slack's `event_id`, in the database) drops it, whichever process took the first;
- `url_verification` is answered with its challenge;
- slash commands and interactivity, whose acknowledgement carries a body (a command's
  reply, a view submission's `response_action`), wait for Bolt on the main loop;
- before the adapter has started and once it is stopping, deliveries are answered 503,
  so that Slack delivers them again later (to another process, or to this one
  restarted) instead of being taken by a process that will not answer them.

With AIBOT_DATA_DIR each acknowledged event is also kept on disk until its answer is
finished (`adapters.slack.acked`): a process killed before its main loop reached an
event leaves it to the next process on the machine.

The main loop dispatches what was verified here as Bolt's "socket_mode" requests: the
mode Bolt uses for requests verified by their transport, so it does not check the
signature again (a delivery that waited in a long backlog would fail its 5 minutes).
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier

from adapters.slack.acked import CLAIM, Claim
from bot.core.front import on_loop

log = logging.getLogger(__name__)

INVALID = {"error": "invalid request"}  # Bolt's answer to a bad signature
# an acknowledged event whose dispatch failed is tried again after 1, 2, 4 ... 60 s, for
# up to an hour (Slack itself retries an unacknowledged event for about that long)
RETRY_FIRST, RETRY_MAX, RETRY_FOR = 1.0, 60.0, 3600.0

Dispatch = Callable[[str | dict, dict], Awaitable[BoltResponse]]  # (body, headers), on the main loop


class Handoff:
    """From an intake's thread to the main loop: `dispatch` runs there as a task of
    `track`'s (the adapter's, so that `idle` waits for it); once closing, nothing more."""

    def __init__(self, *, loop: asyncio.AbstractEventLoop, dispatch: Dispatch,
                 track: Callable[[Awaitable], asyncio.Task]) -> None:
        self.loop = loop
        self.dispatch = dispatch
        self.track = track
        self.acked = 0  # Events API deliveries acknowledged by the intake (for tests and the benchmark)
        self.spool = None  # adapters.slack.acked.AckedSpool: events on disk until handed to the core
        self.ready = False  # the adapter is started: deliveries before that are left to Slack to send again
        self._lock = threading.Lock()
        self._handing = 0  # handed over, not yet a task on the main loop
        self.closing = False

    def event(self, payload: dict, headers: dict, raw: bytes | None = None) -> bool:
        """An Events API delivery: handed over (acknowledge it), or False when stopping (do
        not: Slack sends it again)."""
        with self._lock:
            if self.closing or not self.ready:
                return False
            self._handing += 1
        path = self.spool.add(payload, raw) if self.spool is not None else None
        if self._hand(payload, headers, Claim(path) if path is not None else None, retry=True) is None:  # loop gone
            if path is not None:
                Claim(path).done()
            return False
        self.acked += 1
        return True

    async def response(self, body: str | dict, headers: dict) -> BoltResponse | None:
        """A command or an interaction: Bolt's response, its acknowledgement (None: refused)."""
        with self._lock:
            if self.closing or not self.ready:
                return None
            self._handing += 1
        done = self._hand(body, headers)
        return None if done is None else await asyncio.wrap_future(done)

    def _hand(self, body: str | dict, headers: dict, claim: Claim | None = None, *, retry: bool = False):
        """To the main loop (the caller counted it in `_handing`): a future of Bolt's
        response, or None when that loop is closed."""
        def start() -> asyncio.Task:
            try:
                task = self.track(self.run(body, headers, claim, retry=retry))
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

    async def run(self, body: str | dict, headers: dict, claim: Claim | None = None, *, retry: bool = False):
        """Bolt's dispatch, on the main loop; the event's file (`claim`) goes with it to the
        answer that takes it over (the adapter's `_submit`), or is removed here.

        `retry`: an event already acknowledged, which Slack will not send again. If its
        dispatch fails before an answer took it (e.g. the database is down while its
        workspace is authorized), it is dispatched again with backoff, for as long as
        Slack itself would have retried; if the process stops first, its file stays for
        the next start. The router's dedupe drops it if it was handled after all."""
        CLAIM.set(claim)  # this task's context, copied into the tasks it starts
        delay, deadline = RETRY_FIRST, time.monotonic() + RETRY_FOR
        while True:
            try:
                response = await self.dispatch(body, headers)
            except Exception:
                taken = claim is not None and claim.taken
                if not retry or taken or self.closing or time.monotonic() + delay > deadline:
                    if claim is not None and not taken:
                        claim.release() if retry else claim.done()  # an acknowledged event's file stays
                    raise
                log.warning("an acknowledged Slack event could not be handed over; trying again in %.0f s",
                            delay, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            if claim is not None and not claim.taken:
                claim.done()
            return response

    async def close(self) -> None:
        """Take no more deliveries and wait until every one already acknowledged is a task
        of the adapter's (which `idle` then waits for). On the main loop."""
        with self._lock:
            self.closing = True
        while True:
            with self._lock:
                if self._handing == 0:
                    return
            await asyncio.sleep(0.01)


class SlackIntake:
    """HTTP mode: `handle` is the POST handler of Slack's path, run on the front door's loop."""

    def __init__(self, *, signing_secret: str, handoff: Handoff) -> None:
        self.verifier = SignatureVerifier(signing_secret)
        self.handoff = handoff

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
                return web.Response(status=200) if self.handoff.event(payload, headers, raw) else _busy()
        response = await self.handoff.response(body, headers)
        if response is None:
            return _busy()
        out = web.Response(status=response.status, body=response.body.encode() if response.body else b"")
        for name, values in response.headers.items():
            if name.lower() in ("content-type", "x-slack-no-retry"):
                out.headers[name] = values[0] if isinstance(values, (list, tuple)) else values
        return out


def _busy() -> web.Response:
    return web.json_response({"error": "stopping"}, status=503, headers={"Retry-After": "60"})


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("dispatching a Slack delivery failed", exc_info=task.exception())
