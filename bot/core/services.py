"""The services every handler can use, built once by the composition root (bot.app)."""
from __future__ import annotations

from dataclasses import dataclass, field

from bot.core.answers import CachedAnswers
from bot.core.budgets import Budgets
from bot.core.cache import Cache
from bot.core.channels import Channels
from bot.core.settings import Settings
from bot.core.dedupe import Dedupe
from bot.core.ledger import Ledger
from bot.core.knowledge import KnowledgeBase
from bot.core.llm import LLM


@dataclass
class Services:
    settings: Settings
    db: object  # bot.core.db.Database
    ledger: Ledger
    cache: Cache
    llm: LLM
    dedupe: Dedupe
    channels: Channels = field(default_factory=Channels)
    kb: KnowledgeBase | None = None  # set by the RAG pattern
    answers: CachedAnswers | None = None  # exact + semantic answer caches in front of the model
    budgets: Budgets | None = None
