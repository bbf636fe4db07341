"""The bot's HTTP server (aiohttp): health and metrics here; Slack's HTTP mode and the
batch API add their routes before it starts. Started only when AIBOT_HTTP_PORT is set
(or an adapter needs it)."""
from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import text

log = logging.getLogger(__name__)


class HttpServer:
    def __init__(self, services, *, host: str, port: int) -> None:
        self.services = services
        self.host = host
        self.port = port
        self.app = web.Application(client_max_size=25 * 1024 * 1024)
        self.app.router.add_get("/healthz", self.health)
        self.app.router.add_get("/metrics", self.metrics)
        self._runner: web.AppRunner | None = None
        self.bound_port: int | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.bound_port = sockets[0].getsockname()[1] if sockets else self.port
        log.info("HTTP server on %s:%s", self.host, self.bound_port)

    async def stop(self) -> None:
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
        """Prometheus text format, per pattern, from the usage ledger."""
        stats = await self.services.ledger.stats()
        lines = [
            "# TYPE aibot_requests_total counter",
            "# TYPE aibot_errors_total counter",
            "# TYPE aibot_cache_hits_total counter",
            "# TYPE aibot_tokens_total counter",
            "# TYPE aibot_cost_usd_total counter",
            "# TYPE aibot_latency_ms gauge",
        ]
        for s in stats:
            p = f'pattern="{s.pattern}"'
            lines += [
                f"aibot_requests_total{{{p}}} {s.requests}",
                f"aibot_errors_total{{{p}}} {s.errors}",
                f"aibot_cache_hits_total{{{p}}} {s.cache_hits}",
                f'aibot_tokens_total{{{p},kind="prompt"}} {s.prompt_tokens}',
                f'aibot_tokens_total{{{p},kind="completion"}} {s.completion_tokens}',
                f"aibot_cost_usd_total{{{p}}} {float(s.cost_usd)}",
                f'aibot_latency_ms{{{p},stat="avg"}} {s.avg_latency_ms:.3f}',
                f'aibot_latency_ms{{{p},stat="p95"}} {s.p95_latency_ms:.3f}',
            ]
        if self.services.feedback is not None:
            lines.append("# TYPE aibot_feedback_total counter")
            for f in await self.services.feedback.stats():
                labels = f'pattern="{f.pattern}",model="{_label(f.model)}"'
                lines += [f'aibot_feedback_total{{{labels},rating="up"}} {f.up}',
                          f'aibot_feedback_total{{{labels},rating="down"}} {f.down}']
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


def _label(value: str) -> str:
    """A Prometheus label value, escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
