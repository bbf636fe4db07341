"""Load: answers in parallel across conversations and in order within one; past the
in-flight limit messages wait (with a visible "queued" status) and are all answered,
once, without an error; overload shows in /metrics."""
from __future__ import annotations

import asyncio
import time

import aiohttp

from bot.app import App
from bot.core.http import HttpServer
from bot.core.load import QUEUED
from bot.core.reports import usage_report
from tests.fakes.openai_server import Script
from tests.harness import RecordingConversation
from tests.slack_support import *  # noqa: F401,F403
from tests.slack_support import load

ANSWER = "one two three four five six seven eight."


class StatusConversation(RecordingConversation):
    """A surface with a status line (Slack's assistant status, Discord's typing)."""

    def __init__(self, load=None, **kw) -> None:
        super().__init__(**kw)
        self.statuses: list[str | None] = []
        self.load = load
        self.peak_in_flight = 0

    async def set_status(self, text: str | None) -> None:
        self.statuses.append(text)

    async def post(self, text: str, *, ephemeral: bool = False) -> str:
        if self.load is not None:
            self.peak_in_flight = max(self.peak_in_flight, self.load.in_flight)
        return await super().post(text, ephemeral=ephemeral)


async def test_messages_beyond_capacity_wait_get_a_queued_status_and_are_all_answered_once(settings, fake_llm, bot):
    settings = settings.model_copy(update=dict(max_in_flight=2, queued_notice_seconds=0.1))
    fake_llm.responder = lambda body: Script(text=ANSWER, tokens_per_second=25)  # ~0.3 s per answer
    async with await App.open(settings) as app:
        load_ = app.services.load
        convs = [StatusConversation(load_) for _ in range(7)]
        msgs = [bot.incoming(f"@aibot question {i}", id=f"m{i}", channel=f"C{i}") for i in range(7)]
        handled = await asyncio.gather(*(app.router.dispatch(m, c) for m, c in zip(msgs, convs)))

        assert [h.error for h in handled] == [None] * 7
        assert [c.texts for c in convs] == [[ANSWER]] * 7  # every one answered, exactly once
        assert max(c.peak_in_flight for c in convs) <= 2
        assert load_.counters["queued"] >= 5
        waited = [c for c in convs if QUEUED in c.statuses]
        assert waited, "no message that waited was told it is queued"
        for c in waited:  # the queued status comes first and is gone at the end
            assert c.statuses[0] == QUEUED and c.statuses[-1] is None
        assert len(fake_llm.chat_requests) == 7

        http = HttpServer(app.services, host="127.0.0.1", port=0)
        await http.start()
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(f"http://127.0.0.1:{http.bound_port}/metrics") as resp:
                    metrics = await resp.text()
        finally:
            await http.stop()
        queued = next(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("aibot_queued_total "))
        assert queued >= load_.counters["queued"] >= 5  # the process's counter (earlier tests add to it)
        assert "aibot_in_flight_limit 2.0" in metrics
        assert "aibot_ledger_backlog " in metrics  # usage rows not yet written (a gauge)
        assert sum(s.requests for s in await usage_report(app.services.db, ledger=app.services.ledger) if s.group == "streaming") == 7


async def test_two_conversations_in_one_channel_are_answered_at_the_same_time(app, bot, fake_llm):
    """Two people mentioning the bot in one Discord channel (no thread): neither waits
    for the other's answer."""
    fake_llm.responder = lambda body: Script(text=ANSWER, tokens_per_second=20)  # ~0.4 s each
    convs = [RecordingConversation(), RecordingConversation()]
    msgs = [bot.incoming("@aibot first question", platform="discord", id="111"),
            bot.incoming("@aibot second question", platform="discord", id="222")]
    started = time.monotonic()
    await asyncio.gather(*(app.router.dispatch(m, c) for m, c in zip(msgs, convs)))
    elapsed = time.monotonic() - started
    assert [c.texts for c in convs] == [[ANSWER], [ANSWER]]
    first, second = (r.at for r in fake_llm.requests if r.path.endswith("/chat/completions"))
    assert abs(second - first) < 0.3  # the second model call did not wait for the first answer
    assert elapsed < 0.75


async def test_messages_in_one_thread_are_answered_in_order(app, bot, fake_llm):
    fake_llm.responder = lambda body: Script(text=ANSWER, tokens_per_second=40)
    done: list[str] = []

    class Noting(RecordingConversation):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        async def post(self, text: str, *, ephemeral: bool = False) -> str:
            mid = await super().post(text, ephemeral=ephemeral)
            done.append(self.name)
            return mid

    a = bot.incoming("@aibot first in the thread", id="m1", thread="t1")
    b = bot.incoming("@aibot second in the thread", id="m2", thread="t1")
    first = asyncio.create_task(app.router.dispatch(a, Noting("a")))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(app.router.dispatch(b, Noting("b")))
    await asyncio.gather(first, second)
    assert done == ["a", "b"]
    requests = [r for r in fake_llm.requests if r.path.endswith("/chat/completions")]
    assert "first in the thread" in str(requests[0].body["messages"][-1])
    assert requests[1].at >= requests[0].at + 8 / 40 * 0.8  # asked only once the first answer was done


async def test_slack_mentions_in_one_busy_channel_stream_at_the_same_time(slack, fake_llm):
    fake_llm.responder = lambda body: Script(text=ANSWER, tokens_per_second=20)
    for i in range(3):
        await slack.event(load("app_mention", event_id=f"EvBusy{i}", ts=f"1700000000.00000{i}",
                               text=f"<@U0BOTUSER> question {i}"), settle=False)
    await slack.settle()
    stops = slack.fake.calls_to("chat.stopStream")
    assert len(stops) == 3
    starts = sorted(r.at for r in fake_llm.requests if r.path.endswith("/chat/completions"))
    assert starts[-1] - starts[0] < 0.3  # all three asked the model before any answer (~0.4 s) ended


async def test_usage_rows_queued_during_a_database_outage_are_written_when_it_returns(app, bot, fake_llm, pg,
                                                                                       database_url):
    from sqlalchemy.engine import make_url

    name = make_url(database_url).database
    assert (await bot.send("@aibot warm up"))  # one answer before: its row, and the KB presence known
    ledger = app.services.ledger
    assert await ledger.flush(timeout=10)
    before = ledger.written

    def outage(on: bool) -> None:
        pg.server.psql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if on else "true"};')
        if on:
            pg.server.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';")

    await asyncio.to_thread(outage, True)
    try:
        replies = [await bot.send(f"@aibot question {i} while the database is down") for i in range(5)]
        assert all(r and "Fake answer" in r[-1] for r in replies)  # users are still answered
        await asyncio.sleep(0.5)
        assert ledger.backlog == 5 and ledger.written == before  # held, not written, not dropped
        assert app.services.load.counters["ledger_retries"] >= 1
    finally:
        await asyncio.to_thread(outage, False)
    assert await ledger.flush(timeout=30)
    async with app.services.db.session() as s:
        from sqlalchemy import text

        rows = (await s.execute(text("SELECT count(*) FROM usage WHERE pattern = 'streaming'"))).scalar_one()
    assert rows == 1 + 5


async def test_questions_get_the_embedding_model_before_waiting_ingestion_slices():
    from bot.core.embeddings import LocalEmbedder

    order: list[str] = []

    class Timed(LocalEmbedder):  # the gate and slicing are real; encoding is a timed stand-in
        def encode(self, texts):
            time.sleep(0.05)
            order.append("question" if len(texts) == 1 else "slice")
            return [[0.0] * 384 for _ in texts]

    embedder = Timed(batch_size=2)  # slices of 2 texts
    ingest = asyncio.create_task(embedder.embed([f"passage {i}" for i in range(40)]))  # 20 slices
    await asyncio.sleep(0.02)  # the first slice is being encoded
    question = asyncio.create_task(embedder.embed(["what changed?"]))
    vectors = await question
    assert len(vectors) == 1 and order.index("question") == 1  # right after the slice in hand
    assert len(await ingest) == 40


async def test_a_pool_larger_than_the_database_allows_is_refused_at_start_with_the_fix(settings):
    from bot.core.db import Database
    from bot.core.errors import ConfigError

    too_big = settings.model_copy(update=dict(db_pool_size=1000, workers=2))
    try:
        await Database.open(too_big)
    except ConfigError as exc:
        message = str(exc)
    else:
        raise AssertionError("a pool the server cannot serve was accepted")
    assert "AIBOT_WORKERS=2 x (AIBOT_DB_POOL_SIZE=1000 + AIBOT_DB_MAX_OVERFLOW=10)" in message
    assert "max_connections" in message and "secret" not in message
    db = await Database.open(settings)  # the default pool fits
    await db.close()
