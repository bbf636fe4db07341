"""The answer caches as users meet them: a question asked again (or reworded) anywhere in
the workspace is answered from the cache and says so; another workspace, a follow-up, a
time-dependent question, a near miss ("disable" for "enable") and `--fresh` go to the
model; a changed document invalidates the answers built from it; budgets refuse clearly."""
from __future__ import annotations

from sqlalchemy import select, text

from bot.core.models import Usage
from bot.core.semantic import AnswerKey, SemanticCache
from tests.test_kb import HANDBOOK, upload


async def _rows(app) -> list[Usage]:
    assert await app.services.ledger.flush(timeout=10)  # usage rows are written behind the answers
    async with app.services.db.session() as s:
        return list((await s.execute(select(Usage).order_by(Usage.id))).scalars().all())


async def test_a_repeat_from_another_person_in_another_channel_is_a_marked_cache_hit(bot, app, fake_llm):
    fake_llm.enqueue("Open Settings > Network > VPN and choose Reset password.")
    first = await bot.send("@aibot How do I reset my VPN password?", user="U1", channel="C1")
    assert first == ["Open Settings > Network > VPN and choose Reset password."]
    again = await bot.send("@aibot How do I reset my VPN password?", user="U2", channel="C2")
    reworded = await bot.send("@aibot How can I reset my VPN password?", user="U3", channel="C3")
    assert len(fake_llm.chat_requests) == 1
    for reply in (again, reworded):
        assert reply[0].startswith("Open Settings > Network > VPN")
        assert "cached answer" in reply[0] and "--fresh" in reply[0]
    rows = await _rows(app)
    assert [r.cache_hit for r in rows] == [False, True, True]
    assert [r.extra["cache"] for r in rows[1:]] == ["exact", "semantic"]
    assert all(r.cost_usd == 0 and r.saved_usd > 0 for r in rows[1:])


async def test_another_workspace_never_gets_the_cached_answer(bot, fake_llm):
    fake_llm.enqueue("Answer for workspace one.", "Answer for workspace two.")
    await bot.send("@aibot How do I reset my VPN password?", tenant="T1")
    other = await bot.send("@aibot How do I reset my VPN password?", tenant="T2")
    assert other == ["Answer for workspace two."] and len(fake_llm.chat_requests) == 2


async def test_follow_ups_time_questions_and_near_misses_bypass_or_miss_the_cache(bot, app, fake_llm):
    await bot.send("@aibot How do I enable SSO in Okta?")
    for question in ("@aibot and how do I disable it?", "@aibot what about that one above?",
                     "@aibot What is the latest release of Okta?", "@aibot How do I disable SSO in Okta?",
                     "@aibot How do I enable SSO in Jira?"):
        reply = await bot.send(question, user="U9", channel="C9")
        assert "cached answer" not in reply[0], question
    assert len(fake_llm.chat_requests) == 6
    async with app.services.db.engine.connect() as conn:
        kept = (await conn.execute(text("SELECT question FROM answer_cache ORDER BY id"))).scalars().all()
    # follow-ups and time-dependent questions are not even stored
    assert kept == ["How do I enable SSO in Okta?", "How do I disable SSO in Okta?", "How do I enable SSO in Jira?"]


async def test_fresh_asks_the_model_again_and_replaces_the_cached_answer(bot, fake_llm):
    fake_llm.enqueue("Old answer.", "New answer.")
    await bot.send("@aibot How do I reset my VPN password?")
    fresh = await bot.send("@aibot --fresh How do I reset my VPN password?")
    assert fresh == ["New answer."]
    later = await bot.send("@aibot How do I reset my VPN password?", user="U7")
    assert later[0].startswith("New answer.") and "cached answer" in later[0]
    assert len(fake_llm.chat_requests) == 2


async def test_a_question_about_what_the_channel_just_said_is_answered_with_it(bot, fake_llm):
    await bot.send("the launch moved to Thursday")
    await bot.send("@aibot When is the launch?")
    assert any("launch moved" in m["content"] for m in fake_llm.chat_requests[-1]["messages"])


async def test_ask_reuses_an_answer_until_the_document_it_came_from_changes(bot, app, fake_llm):
    await upload(bot, {"handbook.md": HANDBOOK})
    fake_llm.enqueue("Within 30 days [1].")
    first = await bot.send("/ask how many days do customers have to ask for a refund?")
    assert first[-1].startswith("Within 30 days")
    cached = await bot.send("/ask how many days do customers have to ask for a refund?", user="U2")
    assert cached[-1].startswith("Within 30 days") and "cached answer" in cached[-1] and "/ask --fresh" in cached[-1]
    assert "**Sources**" in cached[-1]
    assert len(fake_llm.chat_requests) == 1

    await upload(bot, {"handbook.md": HANDBOOK.replace(b"within 30 days", b"within 60 days")})
    fake_llm.enqueue("Within 60 days [1].")
    after = await bot.send("/ask how many days do customers have to ask for a refund?", user="U3")
    assert after[-1].startswith("Within 60 days") and "cached answer" not in after[-1]
    assert len(fake_llm.chat_requests) == 2

    fake_llm.enqueue("Within 60 days, fresh [1].")
    fresh = await bot.send("/ask --fresh how many days do customers have to ask for a refund?")
    assert fresh[-1].startswith("Within 60 days, fresh") and len(fake_llm.chat_requests) == 3


async def test_entries_of_a_removed_document_can_be_dropped_and_stay_per_tenant(app):
    cache = SemanticCache(db=app.services.db, embedder=app.services.answer_cache.semantic.embedder, threshold=0.9,
                          ttl_seconds=60)
    key_a = AnswerKey(tenant="A", kind="rag", model="m", prompt_version="v", scope="s")
    key_b = AnswerKey(tenant="B", kind="rag", model="m", prompt_version="v", scope="s")
    vec = await cache.embed("How do I rotate an API key?")
    await cache.store(key_a, "How do I rotate an API key?", vec, "A's answer", prompt_tokens=1, completion_tokens=1,
                      documents=[7])
    await cache.store(key_b, "How do I rotate an API key?", vec, "B's answer", prompt_tokens=1, completion_tokens=1,
                      documents=[7])
    assert (await cache.lookup(key_a, "How do I rotate an API key?", vec)).answer == "A's answer"
    assert await cache.invalidate_documents("A", [7]) == 1
    assert await cache.lookup(key_a, "How do I rotate an API key?", vec) is None
    assert (await cache.lookup(key_b, "How do I rotate an API key?", vec)).answer == "B's answer"


async def test_the_same_pasted_text_is_summarized_once_per_workspace(bot, app, fake_llm):
    text = "The launch plan. Marketing starts on Monday, engineering freezes the code on Wednesday. " * 6
    fake_llm.enqueue("Short summary.")
    assert (await bot.send(f"/summarize {text}"))[0] == "Short summary."
    respaced = await bot.send("/summarize " + "  ".join(text.split(" ")), user="U2", channel="C2")
    assert respaced[0].startswith("Short summary.") and "cached answer" in respaced[0]
    assert "/summarize --fresh" in respaced[0]
    assert len(fake_llm.chat_requests) == 1
    fake_llm.enqueue("Other workspace summary.", "Fresh summary.")
    assert (await bot.send(f"/summarize {text}", tenant="T2"))[0] == "Other workspace summary."
    assert (await bot.send(f"/summarize --fresh {text}"))[0] == "Fresh summary."
    assert len(fake_llm.chat_requests) == 3
    rows = await _rows(app)
    assert [r.extra.get("cache") if r.extra else None for r in rows if r.cache_hit] == ["summary"]
    assert all(r.saved_usd > 0 for r in rows if r.cache_hit)


async def test_expired_answers_are_not_reused_and_are_cleared_on_the_next_write(app):
    cache = app.services.answer_cache.semantic
    key = AnswerKey(tenant="T1", kind="chat", model="m", prompt_version="v")
    vec = await cache.embed("How do I rotate an API key?")
    await cache.store(key, "How do I rotate an API key?", vec, "old", prompt_tokens=1, completion_tokens=1)
    async with app.services.db.engine.begin() as conn:
        await conn.execute(text("UPDATE answer_cache SET expires_at = now() - interval '1 second'"))
    assert await cache.lookup(key, "How do I rotate an API key?", vec) is None
    other = await cache.embed("Where is the holiday calendar?")
    await cache.store(key, "Where is the holiday calendar?", other, "new", prompt_tokens=1, completion_tokens=1)
    async with app.services.db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT answer FROM answer_cache"))).scalars().all() == ["new"]


async def test_a_thumbs_down_on_a_cached_answer_evicts_it_so_the_next_asker_gets_a_new_one(bot, app, fake_llm):
    from bot.core.answers import Controls, Press
    from tests.harness import RecordingConversation

    class Controlled(RecordingConversation):
        controls: Controls | None = None

    fake_llm.enqueue("Wrong: restart the router.", "Right: open Settings > VPN > Reset password.")
    await bot.send("@aibot How do I reset my VPN password?", user="U1", channel="C1")
    for question in ("How do I reset my VPN password?", "How can I reset my VPN password?"):  # exact, then semantic
        conv = Controlled()
        reply = await bot.send(f"@aibot {question}", user="U2", channel="C2", conv=conv)
        assert "cached answer" in reply[0] and len(fake_llm.chat_requests) == 1
        # U2 rates the cached answer 👎 (the adapter's button press, normalized)
        await app.services.feedback.rate(Press(action="bad", answer=conv.controls.answer, platform="test",
                                               tenant="T1", channel="C2", user="U2"), -1)
        if question.startswith("How can"):
            break
        again = await bot.send("@aibot How do I reset my VPN password?", user="U3", channel="C3")
        # the exact entry is gone, but the semantic cache still holds the same question's answer
        assert "cached answer" in again[0]
    fresh = await bot.send("@aibot How could I reset my VPN password?", user="U4", channel="C4")
    assert fresh == ["Right: open Settings > VPN > Reset password."] and len(fake_llm.chat_requests) == 2


async def test_removing_a_document_drops_the_cached_answers_that_quote_it(bot, app, fake_llm):
    await upload(bot, {"handbook.md": HANDBOOK})
    fake_llm.enqueue("Within 30 days [1].")
    await bot.send("/ask how many days do customers have to ask for a refund?")
    async with app.services.db.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT count(*) FROM answer_cache WHERE kind = 'rag'"))).scalar_one()
    assert stored == 1
    listing = await bot.send("/kb list")
    number = listing[-1].split("#", 1)[1].split()[0].strip("*`:.)")
    await bot.send(f"/kb remove {number}")
    async with app.services.db.engine.connect() as conn:
        left = (await conn.execute(text("SELECT count(*) FROM answer_cache WHERE answer LIKE '%30 days%'"))).scalar_one()
    assert left == 0  # the removed document's text does not live on in the cache
