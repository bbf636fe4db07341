"""Pooled connections are checked at checkout without a round trip per use
(`bot.core.db_liveness`): one the server closed is replaced before anyone uses it, one
idle past the limit is pinged first, and a connection in steady use costs nothing extra."""
from __future__ import annotations

import asyncio

from sqlalchemy import event, text

from bot.core import db_liveness
from bot.core.db import Database


async def _backend_pid(db: Database) -> int:
    async with db.session() as s:
        return (await s.execute(text("SELECT pg_backend_pid()"))).scalar_one()


def _statements(db: Database) -> list[str]:
    seen: list[str] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *a: seen.append(statement))
    return seen


async def test_a_connection_the_server_closed_is_replaced_at_checkout(settings, pg):
    db = await Database.open(settings)
    try:
        first = await _backend_pid(db)
        await asyncio.to_thread(pg.server.psql, f"SELECT pg_terminate_backend({first});")
        await asyncio.sleep(0.2)
        assert await _backend_pid(db) != first  # a new connection, and no error
    finally:
        await db.close()


async def test_a_connection_in_steady_use_is_not_pinged(settings):
    db = await Database.open(settings)
    try:
        await _backend_pid(db)
        pings: list[object] = []
        original = db.engine.dialect.do_ping
        db.engine.dialect.do_ping = lambda c: pings.append(c) or original(c)
        try:
            seen = _statements(db)
            for _ in range(5):
                await _backend_pid(db)
            assert pings == []
            assert seen == ["SELECT pg_backend_pid()"] * 5  # only the work itself went to the server
        finally:
            db.engine.dialect.do_ping = original
    finally:
        await db.close()


async def test_a_connection_idle_past_the_limit_is_pinged_before_use(settings, monkeypatch):
    monkeypatch.setattr(db_liveness, "IDLE", 0.0)
    db = await Database.open(settings)
    try:
        first = await _backend_pid(db)
        pings: list[object] = []
        original = db.engine.dialect.do_ping
        db.engine.dialect.do_ping = lambda c: pings.append(c) or original(c)
        try:
            await asyncio.sleep(0.05)
            assert await _backend_pid(db) == first and len(pings) == 1  # idle: pinged, alive, kept
        finally:
            db.engine.dialect.do_ping = original
    finally:
        await db.close()
