"""Knowledge-base scores and thresholds: `score` is the value the ranking used (results in
descending order, in every mode), results spread over documents, the "not in the
knowledge base" threshold and the strong-hit routing both look at the best passage.

Uses the real local embedding model and real PostgreSQL."""
from __future__ import annotations

import pytest

from patterns.rag import Rag
from sqlalchemy import text

from patterns.rag import ranking
from patterns.rag.ranking import LEXICAL_WEIGHT, Candidate, Lexicon, blend, choose
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


# ---------------------------------------------------------------- the hybrid ranking

OFFICE = {
    "hours.md": b"# Office hours\n\nThe office opens at eight. The office closes at six; the office is closed on public holidays.",
    "plants.md": b"# Office plants\n\nOffice plants are watered on Fridays by the office manager; do not move the office plants.",
    "kitchen.md": b"# Office kitchen\n\nThe office kitchen has coffee and tea. Clean the office kitchen after use; "
                  b"the office fridge is emptied on Fridays.",
    "evacuation.md": b"# Evacuation\n\nWhen the fire alarm sounds, leave by the nearest stairs and meet at the car park; "
                     b"never use the lifts.",
    **NOTES,
}


async def test_a_page_holding_the_questions_rare_word_is_found_among_pages_repeating_its_common_one(bot, app):
    # "office" is on many pages, "fire" on one: the former ranking (ts_rank, which does not
    # know how rare a word is) put the fire page 4th, behind three pages saying "office" again
    # and again; the hybrid's word share weighs "fire" by its rarity
    await upload(bot, OFFICE)
    kb = app.services.kb
    question = "office fire rules"
    [vector] = await kb.embedder.embed([question])
    before = await kb.search_vector(tenant="T1", query=question, vector=vector, k=2, mode="blend")
    now = await kb.search(tenant="T1", query=question, k=2)
    assert "evacuation.md" not in [p.document for p in before]
    assert "evacuation.md" in [p.document for p in now]


def test_a_rare_word_counts_more_than_a_common_one_and_the_share_is_bounded():
    lexicon = Lexicon(chunks=1000, words=20_000, holding={"offic": 400, "fire": 3, "rule": 50})
    rare = Candidate(1, 1, cosine=0.4, words={"fire": 1}, length=20)
    common = Candidate(2, 2, cosine=0.4, words={"offic": 3}, length=20)
    everything = Candidate(3, 3, cosine=0.4, words={"offic": 50, "fire": 50, "rule": 50}, length=20)
    assert ranking.word_share(rare, lexicon) > ranking.word_share(common, lexicon) > 0
    assert 0 < ranking.word_share(everything, lexicon) < 1
    assert ranking.match(Candidate(4, 4, cosine=0.4), lexicon) == pytest.approx(0.4)  # no word in common: the cosine
    # a word the knowledge base has never seen weighs the most and is found nowhere
    unseen = Lexicon(chunks=1000, words=20_000, holding={**lexicon.holding, "zyxt": 0})
    assert ranking.word_share(rare, unseen) < ranking.word_share(rare, lexicon)


def _feedback_case(similarity_between_fed: float):
    """Three fed passages (1-3) and a fourth (4) close to all of them but not to the question."""
    cands = [Candidate(1, 1, 0.60), Candidate(2, 2, 0.58), Candidate(3, 3, 0.56), Candidate(4, 4, 0.50),
             Candidate(5, 5, 0.55)]
    first = {c.id: c.cosine for c in cands}
    fed = [1, 2, 3]
    similar = {(a, b): (1.0 if a == b else similarity_between_fed) for a in fed for b in fed}
    similar |= {(4, f): 0.95 for f in fed} | {(5, f): 0.05 for f in fed}
    return cands, first, similar, fed


def test_feedback_pulls_in_a_passage_close_to_best_ones_that_agree_with_each_other():
    cands, first, similar, fed = _feedback_case(0.9)
    final = ranking.feedback(cands, first, similar, fed)
    assert final[4] > final[5]  # passage 4 was below 5 on the question alone
    anchored = ranking.anchor(final, first)
    assert max(anchored.values()) == pytest.approx(max(first.values()))  # the best keeps step 1's value
    assert sorted(anchored, key=anchored.get) == sorted(final, key=final.get)  # same order


def test_feedback_barely_moves_the_question_when_the_best_passages_are_about_different_things():
    cands, first, similar, fed = _feedback_case(0.05)
    final = ranking.feedback(cands, first, similar, fed)
    assert final[5] > final[4]  # unrelated best passages: the question's own order stays
    assert ranking.feedback(cands[:1], first, {}, [1]) == first  # one candidate: nothing to feed back


async def test_word_statistics_follow_documents_added_replaced_and_removed(bot, app):
    kb = app.services.kb

    async def stats():
        async with app.services.db.engine.connect() as conn:
            lexicon = (await conn.execute(text("SELECT chunks FROM kb_lexicon WHERE tenant = 'T1'"))).scalar()
            fire = (await conn.execute(text("SELECT chunks FROM kb_lexemes WHERE tenant = 'T1' AND lexeme = 'fire'"))).scalar()
            chunks = (await conn.execute(text("SELECT count(*) FROM kb_chunks WHERE tenant = 'T1'"))).scalar()
        return lexicon, fire, chunks

    await upload(bot, OFFICE)
    lexicon, fire, chunks = await stats()
    assert lexicon == chunks and fire == 1
    await upload(bot, {"drill.md": b"# Fire drill\n\nA fire drill takes place every spring."})
    assert (await stats())[1] == 2
    await upload(bot, {"drill.md": b"# Drill\n\nThe spring drill is announced a week ahead."})  # replaced
    assert (await stats())[1] == 1
    evacuation = next(d for d in await kb.list(tenant="T1") if d.name == "evacuation.md")
    await kb.remove(tenant="T1", document_id=evacuation.id)
    lexicon, fire, chunks = await stats()
    assert lexicon == chunks and fire is None  # the last passage with "fire" is gone
    await kb.delete_tenant("T1")
    assert await stats() == (None, None, 0)
