"""Model prices (USD per million tokens) and the cost of one call.

Defaults are public list prices; override or extend them with `AIBOT_PRICES`, a JSON
object or the path of a JSON file: `{"my-model": {"input": 0.2, "output": 0.6}}` or
`{"my-model": [0.2, 0.6]}`. A model matches its own entry, else the longest entry that
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


def _p(i: str, o: str) -> Price:
    return Price(Decimal(i), Decimal(o))


DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o-mini": _p("0.15", "0.60"),
    "gpt-4o": _p("2.50", "10.00"),
    "gpt-4.1": _p("2.00", "8.00"),
    "gpt-4.1-mini": _p("0.40", "1.60"),
    "gpt-4.1-nano": _p("0.10", "0.40"),
    "gpt-5": _p("1.25", "10.00"),
    "gpt-5-mini": _p("0.25", "2.00"),
    "gpt-5-nano": _p("0.05", "0.40"),
    "o3-mini": _p("1.10", "4.40"),
    "o4-mini": _p("1.10", "4.40"),
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

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int, *, discount: Decimal = Decimal(1)) -> Decimal:
        """Cost in USD of one call; `discount` scales it (0.5 for the Batch API)."""
        price = self.price(model)
        if price is None:
            if model not in self._unknown_logged:
                self._unknown_logged.add(model)
                log.info("no price for model %r; its calls are recorded at cost 0 (set AIBOT_PRICES)", model)
            return Decimal(0)
        raw = (price.input * prompt_tokens + price.output * completion_tokens) / _MILLION
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
                out[model] = Price(Decimal(str(p["input"])), Decimal(str(p["output"])))
            else:
                inp, outp = p
                out[model] = Price(Decimal(str(inp)), Decimal(str(outp)))
        return out
    except (ValueError, KeyError, TypeError, AttributeError, ArithmeticError):
        raise ConfigError(
            "AIBOT_PRICES must be JSON mapping model names to prices per million tokens, "
            'e.g. AIBOT_PRICES=\'{"my-model": {"input": 0.2, "output": 0.6}}\''
        ) from None
