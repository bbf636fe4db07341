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


async def test_a_workspaces_settings_are_read_once_for_all_its_channels_and_each_channel_keeps_its_own(bot, app,
                                                                                                    fake_llm):
    from sqlalchemy import event

    await bot.send("/aibot channel set persona You are Pirate Pete.", channel="C2")
    reads: list[str] = []
    event.listen(app.services.db.engine.sync_engine, "before_cursor_execute",
                 lambda c, cur, statement, *a: reads.append(statement) if "FROM workspace_settings" in statement else None)
    fake_llm.enqueue("Plain.", "Arr.", "Plain again.")
    for channel in ("C1", "C2", "C3"):
        await bot.send("@aibot hi", channel=channel)
    systems = [r["messages"][0]["content"] for r in fake_llm.chat_requests[-3:]]
    assert systems[1] == "You are Pirate Pete." and not systems[0].startswith("You are Pirate") \
        and not systems[2].startswith("You are Pirate")
    assert len(reads) == 1  # one query for the workspace, not one per channel


async def test_answers_shown_and_finished_together_are_each_remembered_then_closed_for_other_processes(app, bot):
    from bot.core.answer_store import AnswerStore
    from bot.core.answers import Answer

    store = AnswerStore(app.services.db)
    answers = [Answer(bot.incoming(f"@aibot question {i}", channel=f"C{i}"), conv=None) for i in range(5)]
    await asyncio.gather(*(store.remember(a, f"17000000.00000{i}") for i, a in enumerate(answers)))
    seen = [await store.find(a.id) for a in answers]  # what another process reads
    assert [s.running for s in seen] == [True] * 5
    assert [s.question.text for s in seen] == [f"question {i}" for i in range(5)]
    assert (await store.by_message("test", "C3", "17000000.000003")).id == answers[3].id
    await asyncio.gather(*(store.finished(a.id) for a in answers))
    assert [(await store.find(a.id)).running for a in answers] == [False] * 5
