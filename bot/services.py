"""The services every handler can use, built once by the composition root (bot.app)."""
from __future__ import annotations

from dataclasses import dataclass

from bot.cache import Cache
from bot.config import Settings
from bot.dedupe import Dedupe
from bot.ledger import Ledger
from bot.llm import LLM


@dataclass
class Services:
    settings: Settings
    db: object  # bot.db.Database
    ledger: Ledger
    cache: Cache
    llm: LLM
    dedupe: Dedupe
