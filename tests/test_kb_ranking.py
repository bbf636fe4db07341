"""Knowledge-base scores and thresholds: `score` is the value the ranking used (results in
descending order, in every mode), results spread over documents, the "not in the
knowledge base" threshold and the strong-hit routing both look at the best passage.

Uses the real local embedding model and real PostgreSQL."""
from __future__ import annotations

import pytest

from patterns.rag import Rag
from patterns.rag.ranking import LEXICAL_WEIGHT, Candidate, blend, choose
from patterns.rag.store import MODES
from tests.test_kb import HANDBOOK, upload

NOTES = {
    "keys.md": b"# Keys\n\nAPI keys are rotated every 90 days. Rotate a key in the admin console under Keys.",
    "keys-faq.md": b"# Keys FAQ\n\nAn old API key keeps working for 24 hours after it was rotated.",
    "refunds.md": b"# Refunds\n\nRefunds are paid back to the original card within five business days.",
    "parking.md": b"# Parking\n\nVisitors park in the blue zone next to the main entrance.",
    "wifi.md": b"# Wifi\n\nThe office wifi password changes every Monday; reception has it.",
}


@pytest.mark.parametrize("mode", MODES)
async def test_results_come_in_descending_score_order_in_every_mode(bot, app, mode):
    await upload(bot, {"handbook.md": HANDBOOK, **NOTES})
    kb = app.services.kb
    [vector] = await kb.embedder.embed(["how often are api keys rotated?"])
    found = await kb.search_vector(tenant="T1", query="how often are api keys rotated?", vector=vector, k=6, mode=mode)
    assert found, mode
    scores = [p.score for p in found]
    assert scores == sorted(scores, reverse=True), (mode, scores)
    assert "key" in found[0].text.lower()


async def test_the_default_search_ranks_by_its_score(bot, app):
    await upload(bot, {"handbook.md": HANDBOOK, **NOTES})
    found = await app.services.kb.search(tenant="T1", query="when do refunds reach my card?", k=5)
    assert [p.score for p in found] == sorted((p.score for p in found), reverse=True)
    assert found[0].document in ("refunds.md", "handbook.md") and "refund" in found[0].text.lower()


def test_one_document_fills_the_results_only_when_no_other_can():
    rows = [(1, 10, 0.9), (2, 10, 0.85), (3, 10, 0.8), (4, 20, 0.5), (5, 30, 0.4)]
    assert choose(rows, k=3, per_document=2) == [(1, 0.9), (2, 0.85), (4, 0.5)]
    assert choose(rows, k=5, per_document=1) == [(1, 0.9), (2, 0.85), (3, 0.8), (4, 0.5), (5, 0.4)]
    assert choose(rows[:3], k=3, per_document=1) == [(1, 0.9), (2, 0.85), (3, 0.8)]  # one long document


def test_the_hybrid_score_stays_on_the_cosine_scale():
    assert blend(Candidate(1, 1, cosine=0.42)) == pytest.approx(0.42)  # no word in common
    with_words = blend(Candidate(1, 1, cosine=0.42, lexical=10.0))
    assert 0.42 < with_words <= 0.42 + LEXICAL_WEIGHT + 1e-9  # a bounded bonus for the question's words
    assert blend(Candidate(1, 1, cosine=0.42, lexical=0.01)) < with_words


async def test_ten_results_come_from_more_than_a_few_documents(bot, app):
    long_doc = "# Keys\n\n" + "\n\n".join(
        f"## Rotation step {i}\n\nStep {i} of rotating API keys: open the console, choose Keys, press Rotate "
        f"and confirm rotation number {i}." for i in range(12))
    await upload(bot, {"rotation.md": long_doc.encode(), **NOTES})
    found = await app.services.kb.search(tenant="T1", query="how do I rotate api keys?", k=6)
    assert sum(p.document == "rotation.md" for p in found) == 2  # AIBOT_KB_PER_DOCUMENT
    assert len({p.document for p in found}) == 5


async def test_the_relevance_threshold_keeps_exactly_the_passages_at_or_above_it(bot, app, fake_llm):
    await upload(bot, {"handbook.md": HANDBOOK, **NOTES})
    rag = app.feature(Rag)
    question = "how often are api keys rotated?"
    found = await app.services.kb.search(tenant="T1", query=question, k=rag.settings.top_k)
    best = found[0].score

    rag.settings.min_score = best + 0.01
    replies = await bot.send(f"/ask {question}")
    assert replies[0].startswith("That is not in the knowledge base") and fake_llm.chat_requests == []

    rag.settings.min_score = found[1].score
    kept = await rag.answers.relevant(tenant="T1", question=question, channel=None)
    assert [p.chunk_id for p in kept] == [p.chunk_id for p in found[:2]]


async def test_a_mention_goes_to_the_knowledge_base_when_its_best_passage_is_strong(bot, app, fake_llm):
    await upload(bot, {"handbook.md": HANDBOOK, **NOTES})
    rag = app.feature(Rag)
    question = "how long until a refund is paid back to the card?"
    found = await app.services.kb.search(tenant="T1", query=question, k=rag.settings.top_k)
    rag.settings.min_score = -1.0
    rag.settings.strong_score = found[0].score  # only the best passage reaches it
    fake_llm.enqueue("Refunds go back to the card within five business days [1].")
    replies = await bot.send(f"@aibot {question}")
    assert "Sources" in replies[-1]

    rag.settings.strong_score = found[0].score + 0.01
    fake_llm.enqueue("I am not sure.")
    replies = await bot.send(f"@aibot {question}")
    assert replies[-1] == "I am not sure."  # plain chat
