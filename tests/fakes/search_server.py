"""A fake SearxNG on 127.0.0.1: `GET /search?q=…&format=json` answered with SearxNG's
JSON shape (query, number_of_results, results[url, title, content, engine, …], answers,
suggestions, unresponsive_engines). Like a real instance it refuses `format=json` with
403 unless JSON output is enabled, and it records every request.

    search = await FakeSearx().start()
    search.results = [{"url": "https://…", "title": "…", "content": "…"}]
    search.requests[-1]["q"]
"""
from __future__ import annotations

from aiohttp import web


class FakeSearx:
    def __init__(self, *, json_enabled: bool = True, key: str | None = None) -> None:
        self.json_enabled = json_enabled
        self.key = key  # when set, requests need `Authorization: Bearer <key>` (a proxy in front)
        self.results: list[dict] = []
        self.status = 200  # another status answers every request with it
        self.requests: list[dict] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> "FakeSearx":
        app = web.Application()
        app.router.add_get("/search", self._search)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _search(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        q["_authorization"] = request.headers.get("Authorization", "")
        self.requests.append(q)
        if self.key and q["_authorization"] != f"Bearer {self.key}":
            return web.Response(status=401, text="unauthorized")
        if self.status != 200:
            return web.Response(status=self.status, text="error")
        if q.get("format") != "json":
            return web.Response(text="<html>results</html>", content_type="text/html")
        if not self.json_enabled:
            return web.Response(status=403, text="403 Forbidden")
        results = [{"engine": "duckduckgo", "engines": ["duckduckgo"], "score": 1.0, "category": "general",
                    "positions": [i + 1], "parsed_url": [], "template": "default.html", "publishedDate": None, **r}
                   for i, r in enumerate(self.results)]
        return web.json_response({"query": q.get("q", ""), "number_of_results": len(results), "results": results,
                                  "answers": [], "corrections": [], "infoboxes": [], "suggestions": [],
                                  "unresponsive_engines": []})
