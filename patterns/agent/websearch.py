"""The agent's web search provider: any server speaking SearxNG's JSON search API
(`GET <url>/search?q=…&format=json`), which a team can self-host; a key, when set, goes
as a bearer token (for a SearxNG behind an authenticating proxy, or a hosted endpoint
with the same API). Results are quoted material for the model, never instructions."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

log = logging.getLogger(__name__)

MAX_RESPONSE = 2 * 1024 * 1024  # bytes read from the search server at most
MAX_SNIPPET = 600


class SearchFailed(Exception):
    """The search server could not answer; the message is safe to show the model."""


@dataclass(frozen=True)
class Hit:
    title: str
    url: str
    snippet: str
    published: str | None = None


class WebSearch:
    """A SearxNG-compatible search endpoint. `url` is the instance's base URL."""

    def __init__(self, *, url: str, key: str | None = None, timeout: float = 10.0, language: str | None = None,
                 safesearch: int = 1) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.timeout = timeout
        self.language = language
        self.safesearch = safesearch

    async def search(self, query: str, *, k: int = 5) -> list[Hit]:
        params = {"q": query, "format": "json", "safesearch": str(self.safesearch)}
        if self.language:
            params["language"] = self.language
        headers = {"Accept": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
                async with session.get(f"{self.url}/search", params=params, headers=headers) as resp:
                    if resp.status == 403:
                        raise SearchFailed("the search server refused JSON output (enable `json` in its search formats)")
                    if resp.status == 429:
                        raise SearchFailed("the search server is rate limiting; try again later")
                    if resp.status != 200:
                        raise SearchFailed(f"the search server answered HTTP {resp.status}")
                    raw = await resp.content.read(MAX_RESPONSE + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("web search failed: %s", type(exc).__name__)
            raise SearchFailed("the search server could not be reached") from None
        if len(raw) > MAX_RESPONSE:
            raise SearchFailed("the search server's answer was too large")
        try:
            data = json.loads(raw)
        except ValueError:
            raise SearchFailed("the search server did not answer with JSON") from None
        return parse_results(data, k)


def parse_results(data: object, k: int) -> list[Hit]:
    """The first `k` usable results of a SearxNG JSON answer (http(s) URLs only)."""
    results = data.get("results") if isinstance(data, dict) else None
    hits: list[Hit] = []
    for r in results if isinstance(results, list) else []:
        if not isinstance(r, dict):
            continue
        url = str(r.get("url") or "")
        if urlsplit(url).scheme not in ("http", "https"):
            continue
        hits.append(Hit(title=_clean(r.get("title"), 200) or url, url=url[:500], snippet=_clean(r.get("content"), MAX_SNIPPET),
                        published=_clean(r.get("publishedDate"), 40) or None))
        if len(hits) >= k:
            break
    return hits


def _clean(value: object, limit: int) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
