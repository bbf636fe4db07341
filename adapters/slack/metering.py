"""Counts every Slack Web API response for the metrics (calls and 429s by method).

slack_sdk asks each retry handler, in order, about every response and every connection
error; this one is asked first, records what it saw and never asks for a retry, so the
real retry handlers after it decide as before."""
from __future__ import annotations

from urllib.parse import urlparse

from slack_sdk.http_retry.async_handler import AsyncRetryHandler

from bot.core.metrics import METRICS, api_method


class CountingHandler(AsyncRetryHandler):
    def __init__(self) -> None:
        super().__init__(max_retry_count=1_000_000)  # never the reason to stop counting

    async def _can_retry_async(self, *, state, request, response=None, error=None) -> bool:
        if response is not None and error is None:
            METRICS.platform_call("slack", _method(request.url), response.status_code)
        elif response is None and error is not None:
            METRICS.platform_call("slack", _method(request.url), None)
        return False


def _method(url: str) -> str:
    """`https://slack.com/api/chat.postMessage` -> `chat.postMessage`."""
    return api_method(urlparse(url).path, prefix="/api/")
