"""The bot's HTTP server (aiohttp): health and metrics here; Slack's HTTP mode and the
patterns' HTTP API add their routes before it starts. Started only when AIBOT_HTTP_PORT
is set (or an adapter needs it)."""
from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import text

from bot.core.metrics import CONTENT_TYPE, METRICS

log = logging.getLogger(__name__)


class HttpServer:
    def __init__(self, services, *, host: str, port: int, reuse_port: bool = False) -> None:
        self.services = services
        self.host = host
        self.port = port
        self.reuse_port = reuse_port  # several workers on one port: the kernel spreads connections
        self.app = web.Application(client_max_size=25 * 1024 * 1024)
        self.app.router.add_get("/healthz", self.health)
        self.app.router.add_get("/health", self.health)
        self.app.router.add_get("/metrics", self.metrics)
        self._runner: web.AppRunner | None = None
        self.bound_port: int | None = None

    async def start(self) -> None:
        METRICS.on_scrape(self.refresh_pool)
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_port=self.reuse_port or None)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.bound_port = sockets[0].getsockname()[1] if sockets else self.port
        log.info("HTTP server on %s:%s", self.host, self.bound_port)

    async def stop(self) -> None:
        METRICS.forget(self.refresh_pool)
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
