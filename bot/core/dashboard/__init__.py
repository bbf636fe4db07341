"""The usage dashboard at `/dashboard` on the bot's HTTP server: requests, cost, cache
savings and latency over time, per pattern, workspace or model, from the usage ledger.

It opens with the HTTP API's token (AIBOT_API_TOKEN): as a bearer header, or typed once
into its sign-in form, which sets an HttpOnly, SameSite=Strict cookie holding an HMAC of
the token (never the token itself; changing the token signs everyone out). Without a
token set it is off and says so. Charts are drawn by uPlot, vendored in `static/` with
its MIT license (no CDN); the same numbers are in tables for readers without JavaScript.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path

from aiohttp import web

from bot.core.api import Api
from bot.core.dashboard import page
from bot.core.dashboard.data import GROUPS, WINDOWS, load

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
FILES = {  # the only files served, and their types
    "uPlot.iife.min.js": "application/javascript",
    "uPlot.min.css": "text/css",
    "uPlot.LICENSE": "text/plain",
    "dashboard.js": "application/javascript",
    "dashboard.css": "text/css",
}
COOKIE = "aibot_dashboard"
HTML = "text/html"


def mount(app: web.Application, services) -> None:
    settings = services.settings
    api = Api.of(app, settings)

    def session_value(token: str) -> str:
        return hmac.new(token.encode(), b"aibot-dashboard-session", hashlib.sha256).hexdigest()

    def signed_in(request: web.Request) -> bool:
        scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and api.allows(sent.strip()):
            return True
        cookie = request.cookies.get(COOKIE, "")
        ok = False
        for token in api.secrets():
            if cookie:
                ok |= hmac.compare_digest(cookie, session_value(token))
        return ok

    def html(body: str, status: int = 200, **kw) -> web.Response:
        return web.Response(text=body, status=status, content_type=HTML,
                            headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"}, **kw)

    async def show(request: web.Request) -> web.Response:
        if not api.configured():
            return html(page.off(), 503)
        if not signed_in(request):
            return html(page.login(next_query=request.query_string), 401)
        by = request.query.get("by", "pattern")
        window = request.query.get("window", "7d")
        if by not in GROUPS or window not in WINDOWS:
            return web.Response(status=400, text=f"`by` is one of {', '.join(GROUPS)}; `window` one of "
                                                 f"{', '.join(WINDOWS)}.\n")
        view = await load(services.db, by=by, window=window)
        return html(page.dashboard(view))

    async def sign_in(request: web.Request) -> web.Response:
        if not api.configured():
            return html(page.off(), 503)
        form = await request.post() if (request.content_length or 0) <= 4096 else {}
        token = str(form.get("token", "")).strip()
        back = str(form.get("next", ""))
        if not token or not api.allows(token):
            return html(page.login("That token is not right.", next_query=back), 401)
        response = web.Response(status=303, headers={"Location": "/dashboard" + _query(back)})
        response.set_cookie(COOKIE, session_value(token), httponly=True, samesite="Strict", path="/dashboard",
                            secure=request.secure, max_age=12 * 3600)
        return response

    async def sign_out(request: web.Request) -> web.Response:
        response = web.Response(status=303, headers={"Location": "/dashboard"})
        response.del_cookie(COOKIE, path="/dashboard")
        return response

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in FILES:
            raise web.HTTPNotFound()
        return web.Response(body=(STATIC / name).read_bytes(), content_type=FILES[name],
                            headers={"Cache-Control": "public, max-age=3600"})

    app.router.add_get("/dashboard", show)
    app.router.add_post("/dashboard/login", sign_in)
    app.router.add_post("/dashboard/logout", sign_out)
    app.router.add_get("/dashboard/static/{name}", static)


def _query(raw: str) -> str:
    """`?by=...&window=...` back to the page asked for, only with known values."""
    from urllib.parse import parse_qs, urlencode

    asked = {k: v[0] for k, v in parse_qs(raw).items() if v}
    kept = {k: asked[k] for k, allowed in (("by", GROUPS), ("window", WINDOWS)) if asked.get(k) in allowed}
    return "?" + urlencode(kept) if kept else ""
