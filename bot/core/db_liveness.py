"""Whether a pooled database connection is still alive, checked at checkout without a
round trip where none is needed.

SQLAlchemy's `pool_pre_ping` pings on every checkout; with asyncpg that is three round
trips (BEGIN, an empty query, ROLLBACK) before each transaction, a sixth of the bot's
database cost per message. Instead:

- a connection the server closed (a restart or crash, `pg_terminate_backend`,
  `idle_session_timeout`) is known closed to asyncpg without asking the server, since
  its socket saw the end of the stream: it is replaced at once;
- a connection that sat in the pool longer than `idle` seconds, where a firewall or NAT
  may have dropped it without a word, is pinged as `pool_pre_ping` would, and on failure
  every pooled connection older than now is replaced (the server likely restarted);
- any other is used as is: it was in use a moment ago.
"""
from __future__ import annotations

import logging
import time

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

IDLE = 30.0  # seconds in the pool after which a connection is pinged before use
_SINCE = "aibot_idle_since"


def check_on_checkout(engine: AsyncEngine, *, idle: float | None = None) -> None:
    """Install the checks on `engine`'s pool (instead of `pool_pre_ping`); `idle`: seconds
    (default `IDLE`)."""
    idle = IDLE if idle is None else idle
    sync = engine.sync_engine
    dialect = sync.dialect

    @event.listens_for(sync, "checkin")
    def _checked_in(dbapi_connection, record) -> None:
        if dbapi_connection is not None:
            record.info[_SINCE] = time.monotonic()

    @event.listens_for(sync, "checkout")
    def _checked_out(dbapi_connection, record, proxy) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if driver is not None and driver.is_closed():
            raise exc.DisconnectionError("the server closed this connection")
        since = record.info.get(_SINCE)
        if since is None or time.monotonic() - since <= idle:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            log.info("a database connection idle %.0f s failed its ping (%s)", time.monotonic() - since,
                     type(error).__name__)
            raise exc.InvalidatePoolError("an idle connection failed its ping") from error
