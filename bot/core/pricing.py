"""Model prices (USD per million tokens) and the cost of one call.

Defaults are public list prices; override or extend them with `AIBOT_PRICES`, a JSON
object or the path of a JSON file: `{"my-model": {"input": 0.2, "output": 0.6,
"cached_input": 0.05}}` or `{"my-model": [0.2, 0.6, 0.05]}`. Input tokens the provider
served from its prompt cache (`usage.prompt_tokens_details.cached_tokens`) are priced at
`cached_input` (unset: the input price, i.e. no discount). A model matches its own entry, else the longest entry that
its name starts with (`gpt-4o-mini-2024-07-18` is priced as `gpt-4o-mini`). Unknown
models cost 0 (and are logged once), which is right for self-hosted servers.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from bot.core.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Price:
    input: Decimal  # per 1M prompt tokens
    output: Decimal  # per 1M completion tokens
    cached_input: Decimal | None = None  # per 1M prompt tokens read from the provider's cache

    @property
    def cached(self) -> Decimal:
        return self.input if self.cached_input is None else self.cached_input


def _p(i: str, o: str, c: str | None = None) -> Price:
    return Price(Decimal(i), Decimal(o), None if c is None else Decimal(c))


# OpenAI list prices per 1M tokens: input, output, cached input
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o-mini": _p("0.15", "0.60", "0.075"),
    "gpt-4o": _p("2.50", "10.00", "1.25"),
    "gpt-4.1": _p("2.00", "8.00", "0.50"),
    "gpt-4.1-mini": _p("0.40", "1.60", "0.10"),
    "gpt-4.1-nano": _p("0.10", "0.40", "0.025"),
    "gpt-5": _p("1.25", "10.00", "0.125"),
    "gpt-5-mini": _p("0.25", "2.00", "0.025"),
    "gpt-5-nano": _p("0.05", "0.40", "0.005"),
    "o3-mini": _p("1.10", "4.40", "0.55"),
    "o4-mini": _p("1.10", "4.40", "0.275"),
    "gpt-3.5-turbo": _p("0.50", "1.50"),
    "text-embedding-3-small": _p("0.02", "0"),
    "text-embedding-3-large": _p("0.13", "0"),
}

_MILLION = Decimal(1_000_000)


class PriceTable:
    def __init__(self, overrides: str | None = None) -> None:
        self.prices = dict(DEFAULT_PRICES)
        if overrides:
            self.prices.update(_parse(overrides))
        self._unknown_logged: set[str] = set()

    def price(self, model: str) -> Price | None:
        if model in self.prices:
            return self.prices[model]
        best = max((m for m in self.prices if model.startswith(m)), key=len, default=None)
        return self.prices[best] if best else None

    def cost(
        self, model: str, prompt_tokens: int, completion_tokens: int, *, cached_tokens: int = 0,
        discount: Decimal = Decimal(1),
    ) -> Decimal:
        """Cost in USD of one call: `cached_tokens` of the prompt at the cached-input
        rate, the rest at the input rate; `discount` scales it (0.5 for the Batch API)."""
        price = self.price(model)
        if price is None:
            if model not in self._unknown_logged:
                self._unknown_logged.add(model)
                log.info("no price for model %r; its calls are recorded at cost 0 (set AIBOT_PRICES)", model)
            return Decimal(0)
        cached = max(0, min(int(cached_tokens), int(prompt_tokens)))
        raw = (price.input * (prompt_tokens - cached) + price.cached * cached + price.output * completion_tokens) / _MILLION
        return (raw * discount).quantize(Decimal("0.00000001"))


def _parse(value: str) -> dict[str, Price]:
    text = value.strip()
    if not text.startswith("{"):
        path = Path(text).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"AIBOT_PRICES names a file that cannot be read ({path}): {exc.strerror}") from None
    try:
        data = json.loads(text)
        out = {}
        for model, p in data.items():
            if isinstance(p, dict):
                parts = [p["input"], p["output"], p.get("cached_input")]
            elif len(p) in (2, 3):
                parts = [*p, None][:3]
            else:
                raise ValueError(model)
            inp, outp, cached = parts
            out[model] = Price(Decimal(str(inp)), Decimal(str(outp)), None if cached is None else Decimal(str(cached)))
        return out
    except (ValueError, KeyError, TypeError, AttributeError, ArithmeticError):
        raise ConfigError(
            "AIBOT_PRICES must be JSON mapping model names to prices per million tokens, "
            'e.g. AIBOT_PRICES=\'{"my-model": {"input": 0.2, "output": 0.6, "cached_input": 0.05}}\''
        ) from None
