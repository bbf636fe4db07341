"""Counts every Discord REST response for the metrics (calls and 429s by route), through
the aiohttp trace hook discord.py offers (`Client(http_trace=...)`)."""
from __future__ import annotations

import aiohttp

from bot.core.metrics import METRICS, api_method


def trace_config() -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()

    async def on_end(session, context, params: aiohttp.TraceRequestEndParams) -> None:
        status = params.response.status
        if status >= 200:  # not the gateway's websocket upgrade
            METRICS.platform_call("discord", route(params.method, params.url.path), status)

    async def on_error(session, context, params: aiohttp.TraceRequestExceptionParams) -> None:
        METRICS.platform_call("discord", route(params.method, params.url.path), None)

    trace.on_request_end.append(on_end)
    trace.on_request_exception.append(on_error)
    return trace


def route(method: str, path: str) -> str:
    """`POST /api/v10/channels/123/messages` -> `POST channels/:id/messages`; anything
    outside the versioned REST API (attachment downloads from the CDN) is `GET cdn`."""
    parts = path.split("/")
    if not (len(parts) > 3 and parts[1] == "api" and parts[2].startswith("v")):
        return f"{method} cdn"
    return f"{method} {api_method('/'.join(parts[3:]))}"
