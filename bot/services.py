"""The services every handler can use, built once by the composition root (bot.app)."""
from __future__ import annotations

from dataclasses import dataclass, field

from bot.cache import Cache
from bot.channels import Channels
from bot.config import Settings
from bot.dedupe import Dedupe
from bot.ledger import Ledger
from bot.knowledge import KnowledgeBase
from bot.llm import LLM


@dataclass
class Services:
    settings: Settings
    db: object  # bot.db.Database
    ledger: Ledger
    cache: Cache
    llm: LLM
    dedupe: Dedupe
    channels: Channels = field(default_factory=Channels)
    kb: KnowledgeBase | None = None  # set by the RAG pattern
