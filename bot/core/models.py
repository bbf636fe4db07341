"""SQLAlchemy models of the core tables. Schema changes go through migrations/."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, Numeric, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Usage(Base):
    """The usage ledger: one row per model call (or cache hit), whatever its outcome."""

    __tablename__ = "usage"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    pattern: Mapped[str] = mapped_column(String(32), index=True)
    model: Mapped[str] = mapped_column(String(200))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[float] = mapped_column(Numeric(12, 3))
    ttft_ms: Mapped[float | None] = mapped_column(Numeric(12, 3), nullable=True)
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(14, 8), default=0)
    cache_hit: Mapped[bool] = mapped_column(Boolean, default=False)
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0)  # provider prompt-cache reads (0008)
    saved_usd: Mapped[Decimal] = mapped_column(Numeric(14, 8), default=0)  # cost a cache hit avoided (0008)
    outcome: Mapped[str] = mapped_column(String(32), default="ok")
    streamed: Mapped[bool] = mapped_column(Boolean, default=False)
    platform: Mapped[str] = mapped_column(String(32), default="")
    workspace: Mapped[str] = mapped_column(String(200), default="")
    channel: Mapped[str] = mapped_column(String(200), default="")
    user_id: Mapped[str] = mapped_column(String(200), default="")
    extra: Mapped[dict | None] = mapped_column(JSONB, nullable=True)


class CacheEntry(Base):
    """Exact-match cache of model answers, keyed by a hash of model + messages + options."""

    __tablename__ = "llm_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)


class ProcessedEvent(Base):
    """Platform deliveries already handled: a retried delivery is answered once, also
    across replicas sharing the database."""

    __tablename__ = "processed_events"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
