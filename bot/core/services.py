"""The services every handler can use, built once by the composition root (bot.app)."""
from __future__ import annotations

from dataclasses import dataclass, field

from bot.core.answer_cache import CachedAnswers
from bot.core.answers import Answers
from bot.core.budgets import Budgets
from bot.core.cache import Cache
from bot.core.channels import Channels
from bot.core.settings import Settings
from bot.core.dedupe import Dedupe
from bot.core.documents import DocumentReader
from bot.core.feedback import FeedbackStore
from bot.core.journal import Journal
from bot.core.ledger import Ledger
from bot.core.knowledge import KnowledgeBase
from bot.core.llm import LLM
from bot.core.load import Load
from bot.core.peers import Peers
from bot.core.preferences import Defaults, PreferenceLookup
from bot.core.tenants import Tenants


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
    load: Load | None = None  # in-flight limit and overload counters (None: unbounded)
    tenants: Tenants | None = None  # a tenant's data: export, deletion, lifecycle (bot.app builds it)
    prefs: PreferenceLookup = field(default_factory=Defaults)  # set by the settings feature (patterns.workspace)
    documents: DocumentReader | None = None  # set by the RAG pattern: text of PDF, Word, HTML files
    answers: Answers = field(default_factory=Answers)  # answers in flight and their controls
    feedback: FeedbackStore | None = None  # 👍/👎 on answers
    answer_cache: CachedAnswers | None = None  # exact + semantic answer caches in front of the model
    budgets: Budgets | None = None
    journal: Journal | None = None  # answers in flight, for recovery after a crash
    peers: Peers | None = None  # the processes serving this database: shares of per-workspace rate limits
