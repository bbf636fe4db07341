"""What each mention costs the bot, shown by what it asks of Slack, the model and the
database: nothing it can know without asking is asked for."""
from __future__ import annotations

import asyncio

from tests.slack_support import *  # noqa: F401,F403
from tests.slack_support import load

CHANNEL = "C123ABC456"


async def test_a_channel_mention_that_starts_its_thread_is_answered_without_reading_that_thread(slack, fake_llm):
    fake = slack.fake
    fake_llm.enqueue("Fresh thread, no history.")
    await slack.event(load("app_mention"))
    assert fake.bot_messages(CHANNEL)[-1].text == "Fresh thread, no history."
    assert fake.calls_to("conversations.replies") == []  # the thread is the mention itself: nothing to read
    assert fake.calls_to("conversations.history") == []


async def test_questions_asked_at_once_share_one_embedding_request_and_each_gets_its_own_vector(app, fake_llm):
    from bot.core.embeddings import OpenAIEmbedder
    from bot.core.semantic import SemanticCache

    embedder = OpenAIEmbedder(client=app.services.llm.client, model="text-embedding-3-small")
    cache = SemanticCache(db=app.services.db, embedder=embedder, threshold=0.9, ttl_seconds=3600)
    questions = [f"How do I reset the password of system {i}?" for i in range(5)]
    together = await asyncio.gather(*(cache.embed(q) for q in questions))
    assert len([r for r in fake_llm.requests if r.path.endswith("/embeddings")]) == 1
    assert fake_llm.requests[-1].body["input"] == questions
    alone = [await cache.embed(q) for q in questions]  # one request each: nothing else was waiting
    assert len([r for r in fake_llm.requests if r.path.endswith("/embeddings")]) == 1 + 5
    assert together == alone


async def test_a_failed_shared_embedding_request_is_a_cache_miss_for_every_question_in_it(app):
    from bot.core.semantic import SemanticCache

    class Down:
        model = "down"

        async def embed(self, texts):
            raise ConnectionError("embedding endpoint unreachable")

    cache = SemanticCache(db=app.services.db, embedder=Down(), threshold=0.9, ttl_seconds=3600)
    assert await asyncio.gather(*(cache.embed(f"question {i}") for i in range(3))) == [None, None, None]


async def test_a_single_statement_through_autocommit_is_committed_by_itself(app):
    from sqlalchemy import text

    db = app.services.db
    async with db.session.autocommit() as conn:
        await conn.execute(text("INSERT INTO processed_events (key) VALUES ('autocommit-probe')"))
        async with db.engine.connect() as other:  # another connection sees it before this one closes
            seen = (await other.execute(text("SELECT count(*) FROM processed_events WHERE key = 'autocommit-probe'"))).scalar()
    assert seen == 1
