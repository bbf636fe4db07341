"""The HTTP front door: the public port served on a thread and event loop of its own, so
that a request whose answer must not wait for the busy main loop (a platform's
acknowledgement, e.g. Slack's 3 s rule) is answered there at once.

Only the paths registered with `add` are handled on the front loop; their handlers hand
the real work to the main loop (`hand`). Every other request (health, metrics, the API,
the dashboard, the OAuth pages) is passed through, streamed both ways, to the bot's own
aiohttp application, which then listens on a loopback port only.

The thread holds the GIL only while it parses a request and writes an answer, so a main
loop busy with Python code still lets it run every few milliseconds (the interpreter's
switch interval), and a main loop blocked in a long call does not stop it at all.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# hop-by-hop headers (RFC 9110 7.6.1) and the ones aiohttp recomputes for the body it sends
_REQUEST_DROP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
                 "content-length"}
_RESPONSE_DROP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}


class LoopThread:
    """A service on a thread and event loop of its own. `serve(started, stopping)` runs
    there: it sets `started` once it is up (its result is what `start` returns; an
    exception before that is raised by `start`) and returns once `stopping` is set."""

    def __init__(self, *, name: str,
                 serve: Callable[[concurrent.futures.Future, asyncio.Event], Awaitable[None]]) -> None:
        self.name = name
        self.serve = serve
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    async def start(self):
        started: concurrent.futures.Future = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(started,), name=self.name, daemon=True)
        self._thread.start()
        return await asyncio.wrap_future(started)

    async def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and self._stopping is not None:
            loop.call_soon_threadsafe(self._stopping.set)
        await asyncio.to_thread(thread.join, 30)
        self._thread = None

    def _run(self, started: concurrent.futures.Future) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main(started))
        except BaseException as exc:  # failed before it was up (e.g. a bind): `start` raises it
            if not started.done():
                started.set_exception(exc)
            else:
                log.exception("%s stopped", self.name)
        finally:
            self._loop = None
            loop.close()

    async def _main(self, started: concurrent.futures.Future) -> None:
        self._stopping = asyncio.Event()
        await self.serve(started, self._stopping)


class FrontDoor:
    """The public listener on its own thread; `upstream` is the main application's URL."""

    def __init__(self, *, host: str, port: int, upstream: str, reuse_port: bool = False,
                 client_max_size: int = 25 * 1024 * 1024) -> None:
        self.host = host
        self.port = port
        self.upstream = upstream.rstrip("/")
        self.reuse_port = reuse_port
        self.client_max_size = client_max_size
        self.bound_port: int | None = None
        self._routes: dict[str, Handler] = {}
        self._thread = LoopThread(name="http-front", serve=self._serve)

    def add(self, path: str, handler: Handler) -> None:
        """Handle POSTs to `path` on the front loop (before `start`)."""
        self._routes[path] = handler

    async def start(self) -> None:
        """Listen (raising the OSError of a bind that fails, as the main server would)."""
        self.bound_port = await self._thread.start()

    async def stop(self) -> None:
        """Stop listening and close the front loop; requests being answered are finished."""
        await self._thread.stop()

    # --- the front thread -------------------------------------------------------------

    async def _serve(self, started: concurrent.futures.Future, stopping: asyncio.Event) -> None:
        app = web.Application(client_max_size=self.client_max_size)
        for path, handler in self._routes.items():
            app.router.add_post(path, handler)
        app.router.add_route("*", "/{tail:.*}", self._pass)
        # one keep-alive pool to the main application; no timeout: an answer may stream for minutes
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                         timeout=aiohttp.ClientTimeout(total=None)) as session:
            self._session = session
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            try:
                site = web.TCPSite(runner, self.host, self.port, reuse_port=self.reuse_port or None)
                await site.start()
                sockets = getattr(site._server, "sockets", None) or []
                started.set_result(sockets[0].getsockname()[1] if sockets else self.port)
                await stopping.wait()
            finally:
                await runner.cleanup()

    async def _pass(self, request: web.Request) -> web.StreamResponse:
        """Any other request: to the main application and back, streamed (SSE answers too)."""
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _REQUEST_DROP)
        body = await request.read() if request.body_exists else None
        try:
            async with self._session.request(request.method, self.upstream + request.raw_path, headers=headers,
                                             data=body, allow_redirects=False) as upstream:
                response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
                for key, value in upstream.headers.items():
                    if key.lower() not in _RESPONSE_DROP:
                        response.headers.add(key, value)
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
        except aiohttp.ClientError as exc:
            log.warning("the bot's HTTP application did not answer %s %s: %s", request.method, request.path,
                        type(exc).__name__)
            return web.json_response({"error": "unavailable"}, status=502)


def on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[[], asyncio.Future | None]) -> concurrent.futures.Future:
    """Call `fn` on `loop` (another thread's); the returned future gets the result of the
    awaitable `fn` returns (or None). Raises RuntimeError when that loop is closed."""
    done: concurrent.futures.Future = concurrent.futures.Future()

    def call() -> None:
        try:
            result = fn()
        except BaseException as exc:
            done.set_exception(exc)
            return
        if result is None:
            done.set_result(None)
            return

        def finished(f: asyncio.Future) -> None:
            if f.cancelled():
                done.cancel()
            elif f.exception() is not None:
                done.set_exception(f.exception())
            else:
                done.set_result(f.result())

        result.add_done_callback(finished)

    loop.call_soon_threadsafe(call)
    return done
