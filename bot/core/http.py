"""The bot's HTTP server (aiohttp): health and metrics here; Slack's HTTP mode and the
patterns' HTTP API add their routes before it starts. Started only when AIBOT_HTTP_PORT
is set (or an adapter needs it).

A path that must be answered even while the main loop is busy (an adapter's `front`
routes, e.g. Slack's acknowledgements) puts the public port on the front door
(`bot.core.front`), its own thread: the application below then listens on a loopback
port and the front door passes every other request through to it."""
from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import text

from bot.core.front import FrontDoor, Handler
from bot.core.metrics import CONTENT_TYPE, METRICS

log = logging.getLogger(__name__)


class HttpServer:
    def __init__(self, services, *, host: str, port: int, reuse_port: bool = False) -> None:
        self.services = services
        self.host = host
        self.port = port
        self.reuse_port = reuse_port  # several workers on one port: the kernel spreads connections
        self.client_max_size = 25 * 1024 * 1024
        self.app = web.Application(client_max_size=self.client_max_size)
        self.app.router.add_get("/healthz", self.health)
        self.app.router.add_get("/health", self.health)
        self.app.router.add_get("/metrics", self.metrics)
        self._runner: web.AppRunner | None = None
        self._front_routes: dict[str, Handler] = {}
        self.front: FrontDoor | None = None
        self.bound_port: int | None = None

    def add_front(self, path: str, handler: Handler) -> None:
        """Answer POSTs to `path` on the front door's own loop (before `start`)."""
        self._front_routes[path] = handler

    async def start(self) -> None:
        METRICS.on_scrape(self.refresh_pool)
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        if self._front_routes:  # the application on loopback only; the front door takes the public port
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
        else:
            site = web.TCPSite(self._runner, self.host, self.port, reuse_port=self.reuse_port or None)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.bound_port = sockets[0].getsockname()[1] if sockets else self.port
        if self._front_routes:
            self.front = FrontDoor(host=self.host, port=self.port, reuse_port=self.reuse_port,
                                   upstream=f"http://127.0.0.1:{self.bound_port}",
                                   client_max_size=self.client_max_size)
            for path, handler in self._front_routes.items():
                self.front.add(path, handler)
            await self.front.start()
            self.bound_port = self.front.bound_port
        log.info("HTTP server on %s:%s%s", self.host, self.bound_port,
                 f" (answered on its own thread: {', '.join(self._front_routes)})" if self._front_routes else "")

    async def stop(self) -> None:
        METRICS.forget(self.refresh_pool)
        if self.front is not None:  # the public port first: nothing new arrives while the rest stops
            await self.front.stop()
            self.front = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def health(self, request: web.Request) -> web.Response:
        try:
            async with self.services.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            db = "ok"
        except Exception:
            db = "unreachable"
        status = 200 if db == "ok" else 503
        return web.json_response(
            {"status": "ok" if status == 200 else "degraded", "database": db, "llm": self.services.llm.configured},
            status=status,
        )

    async def metrics(self, request: web.Request) -> web.Response:
        """Prometheus text format (`bot.core.metrics`): this process's counters, or every
        worker's with PROMETHEUS_MULTIPROC_DIR; the pool gauge is read now."""
        body = await METRICS.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def refresh_pool(self) -> None:
        ledger = getattr(self.services, "ledger", None)
        if ledger is not None:
            METRICS.ledger_backlog.set(ledger.backlog)
        pool = getattr(getattr(self.services.db, "engine", None), "pool", None)
        if pool is None or not hasattr(pool, "checkedout"):
            return
        METRICS.db_pool.labels("in_use").set(pool.checkedout())
        METRICS.db_pool.labels("idle").set(pool.checkedin())
        METRICS.db_pool.labels("overflow").set(max(0, pool.overflow()))
