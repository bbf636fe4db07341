"""Tables that only grow get trimmed while the bot runs: expired cache entries and
duplicate-delivery records past their window go; live ones stay."""
from __future__ import annotations

from sqlalchemy import text

from bot.core.housekeeping import Housekeeping


async def _count(app, sql: str) -> int:
    async with app.services.db.engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def test_a_pass_removes_expired_rows_and_keeps_live_ones(app):
    async with app.services.db.engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO llm_cache (key, model, text, prompt_tokens, completion_tokens, hits, expires_at) VALUES "
            "('old', 'm', 'stale answer', 1, 1, 0, now() - interval '1 minute'),"
            "('new', 'm', 'fresh answer', 1, 1, 0, now() + interval '1 hour')"))
        await conn.execute(text(
            "INSERT INTO processed_events (key, created_at) VALUES "
            "('slack:T1:old-event', now() - interval '3 days'), ('slack:T1:new-event', now())"))
        await conn.execute(text(
            "INSERT INTO answer_cache (tenant, kind, model, prompt_version, norm_key, question, answer, expires_at) "
            "VALUES ('T1', 'chat', 'm', 'v1', 'a', 'q1', 'stale', now() - interval '1 second'),"
            "       ('T1', 'chat', 'm', 'v1', 'b', 'q2', 'fresh', now() + interval '1 day')"))

    removed = await app.housekeeping.run_once()

    assert removed == {"expired cache entries": 1, "expired semantic cache entries": 1,
                       "old duplicate-delivery records": 1}
    assert await _count(app, "SELECT count(*) FROM llm_cache WHERE key = 'new'") == 1
    assert await _count(app, "SELECT count(*) FROM llm_cache") == 1
    assert await _count(app, "SELECT count(*) FROM processed_events WHERE key = 'slack:T1:new-event'") == 1
    assert await _count(app, "SELECT count(*) FROM processed_events") == 1
    assert await _count(app, "SELECT count(*) FROM answer_cache WHERE answer = 'fresh'") == 1
    assert await _count(app, "SELECT count(*) FROM answer_cache") == 1
    # a retried delivery of the recent event is still recognised after the pass
    assert not await app.services.dedupe.first_time("slack:T1:new-event")


async def test_one_failing_purge_does_not_stop_the_others():
    done = []

    async def broken() -> int:
        raise ConnectionError("database unreachable")

    async def works() -> int:
        done.append(True)
        return 2

    removed = await Housekeeping(jobs={"broken": broken, "works": works}).run_once()
    assert removed == {"works": 2}
    assert done == [True]
