"""Database access: an async SQLAlchemy engine on PostgreSQL (asyncpg), migrations.

`Database.open(settings)` uses `DATABASE_URL` when it is set and the embedded server
otherwise. A database given as an engine is used as is and not disposed by `close`
(close only what you created).
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from bot.core import pgembed
from bot.core.db_liveness import check_on_checkout
from bot.core.priority import is_bulk
from bot.core.settings import Settings
from bot.core.errors import ConfigError

log = logging.getLogger(__name__)

_URL_EXAMPLE = "DATABASE_URL=postgresql+asyncpg://aibot:secret@localhost:5432/aibot"


def normalize_url(url: str) -> str:
    """Accept the usual spellings of a PostgreSQL URL and use the asyncpg driver."""
    url = url.strip()
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def redact(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


class Database:
    def __init__(self, *, engine: AsyncEngine, url: str, owns_engine: bool, embedded: object | None = None) -> None:
        self.engine = engine
        self.url = url
        self._owns_engine = owns_engine
        self._embedded = embedded
        self.created: Path | None = None  # the embedded server's new data directory, when this run made it
        self.session = Sessions(async_sessionmaker(engine, expire_on_commit=False, class_=AsyncSession), engine=engine)

    @classmethod
    async def open(cls, settings: Settings, *, connect_timeout: float = 10.0) -> "Database":
        """Connect (starting the embedded server if no DATABASE_URL); raise ConfigError
        with a fix if the database cannot be reached."""
        embedded, created = None, None
        if settings.database_url:
            url = normalize_url(settings.database_url)
            source = "DATABASE_URL"
        else:
            pgdata = Path(settings.data_dir) / "pg"
            created = None if pgembed.exists(pgdata) else pgdata.expanduser().resolve()
            embedded, url = await asyncio.to_thread(pgembed.start, pgdata)
            source = "the embedded server"
        try:
            if make_url(url).get_backend_name() != "postgresql":
                raise ArgumentError("not a PostgreSQL URL")
            engine = create_async_engine(url, pool_size=settings.pool_size, max_overflow=settings.db_max_overflow,
                                         pool_timeout=settings.db_pool_timeout)
            check_on_checkout(engine)  # liveness without a round trip per checkout
        except (ArgumentError, ValueError) as exc:
            raise ConfigError(
                f"DATABASE_URL is not a usable PostgreSQL URL ({redact(url)}): {exc}. Example: {_URL_EXAMPLE}"
            ) from None
        db = cls(engine=engine, url=url, owns_engine=True, embedded=embedded)
        db.created = created
        db.session.bulk_share = settings.bulk_share
        try:
            async with asyncio.timeout(connect_timeout):
                async with engine.connect() as conn:
                    allowed = (await conn.execute(text(
                        "SELECT current_setting('max_connections')::int"
                        " - current_setting('superuser_reserved_connections')::int"))).scalar_one()
        except Exception as exc:
            await db.close()
            reason = _reason(exc)
            if source == "DATABASE_URL":
                raise ConfigError(
                    f"Cannot connect to PostgreSQL at {redact(url)} (from DATABASE_URL): {reason}. "
                    "Start that server or fix DATABASE_URL, e.g. "
                    f"{_URL_EXAMPLE}; unset DATABASE_URL to use the embedded server."
                ) from None
            raise ConfigError(
                f"Cannot connect to the embedded PostgreSQL server: {reason}. "
                f"Set DATABASE_URL to use another server, e.g. {_URL_EXAMPLE}"
            ) from None
        # + 1: each process's own connection that listens for Stop presses (bot.core.answer_store)
        needed = settings.workers * (settings.pool_size + settings.db_max_overflow + 1)
        if needed > allowed:
            await db.close()
            raise ConfigError(
                f"PostgreSQL at {redact(url)} accepts {allowed} connections, but aibot may open {needed}: "
                f"AIBOT_WORKERS={settings.workers} x (AIBOT_DB_POOL_SIZE={settings.pool_size} + "
                f"AIBOT_DB_MAX_OVERFLOW={settings.db_max_overflow}) + {settings.workers} (one per process, listening "
                "for Stop presses). Lower those (or AIBOT_MAX_IN_FLIGHT, "
                "which sizes the pool when AIBOT_DB_POOL_SIZE is unset), or raise max_connections on the server."
            )
        pooled = settings.pool_size + settings.db_max_overflow
        if settings.db_bulk_share is not None and settings.db_bulk_share >= pooled:
            await db.close()
            raise ConfigError(
                f"AIBOT_DB_BULK_SHARE={settings.db_bulk_share} leaves no database connection for questions: "
                f"it must be below AIBOT_DB_POOL_SIZE + AIBOT_DB_MAX_OVERFLOW ({pooled}), e.g. "
                f"AIBOT_DB_BULK_SHARE={max(1, pooled // 2)}."
            )
        return db

    def connect(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """`engine.connect()` within bulk work's share of the pool, as `session()` is: a
        connection for SQL outside the ORM (the knowledge base's store)."""
        return self.session.gated(self.engine.connect)

    def begin(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """`engine.begin()` (a connection in a transaction) within bulk work's share of the pool."""
        return self.session.gated(self.engine.begin)

    @classmethod
    def from_engine(cls, engine: AsyncEngine) -> "Database":
        return cls(engine=engine, url=str(engine.url), owns_engine=False)

    async def upgrade(self) -> str:
        """Apply pending migrations; return the current revision."""
        from bot.core.migrate import upgrade

        return await upgrade(self.engine)

    async def revive(self) -> None:
        """Start the embedded server again if it died under us (crash, kill); nothing
        to do for an external DATABASE_URL (its operator restarts it)."""
        if self._embedded is not None:
            await asyncio.to_thread(pgembed.revive, self._embedded)

    async def close(self) -> None:
        if self._owns_engine:
            await self.engine.dispose()
        if self._embedded is not None:
            await asyncio.to_thread(pgembed.stop, self._embedded)
            self._embedded = None


_holding: ContextVar[bool] = ContextVar("aibot_bulk_session", default=False)


class Sessions:
    """`db.session()` and `db.session.begin()`, as SQLAlchemy's `async_sessionmaker` (and
    `db.connect()` / `db.begin()`, as the engine's), with
    bulk work (`bot.core.priority.bulk`) holding at most `bulk_share` sessions at once, so
    the rest of the pool is always there for interactive work. A bulk session waits for
    its share before it takes a pooled connection; sessions opened inside one (the same
    task, or tasks it starts) ride on its share instead of waiting for another, so nested
    work cannot deadlock on the share. `bulk_share` None or 0: no limit."""

    def __init__(self, maker: async_sessionmaker, *, engine: AsyncEngine | None = None,
                 bulk_share: int | None = None) -> None:
        self.maker = maker
        engine = engine if engine is not None else maker.kw["bind"]
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._share: int | None = None
        self._gate: asyncio.Semaphore | None = None
        self.bulk_share = bulk_share
        self.bulk_waits = 0  # bulk sessions that found the share taken (for tests and metrics)

    @property
    def bulk_share(self) -> int | None:
        return self._share

    @bulk_share.setter
    def bulk_share(self, share: int | None) -> None:
        self._share = share
        self._gate = asyncio.Semaphore(share) if share else None

    def __call__(self, **kw) -> "AsyncIterator[AsyncSession]":
        return self.gated(lambda: self.maker(**kw))

    def begin(self) -> "AsyncIterator[AsyncSession]":
        return self.gated(self.maker.begin)

    def autocommit(self) -> "AsyncIterator[AsyncConnection]":
        """A pooled connection whose every statement commits on its own: no BEGIN and
        COMMIT round trips around it. For one statement (a read, or a write that is whole
        in one statement); several that must hold together need `begin()`."""
        return self.gated(self._autocommit.connect)

    @asynccontextmanager
    async def gated(self, open_: Callable) -> AsyncIterator:
        """`open_()` (a session's or a connection's context manager) entered within bulk
        work's share when the caller is bulk; as is otherwise."""
        gate = self._gate
        if gate is None or not is_bulk() or _holding.get():
            async with open_() as session:
                yield session
            return
        if gate.locked():
            self.bulk_waits += 1
        async with gate:
            token = _holding.set(True)
            try:
                async with open_() as session:
                    yield session
            finally:
                _holding.reset(token)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer within the connect timeout"
    if isinstance(exc, ConnectionRefusedError) or "refused" in str(exc).lower():
        return "connection refused"
    msg = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = msg[0] if msg else type(exc).__name__
    return redact(first)[:300]
