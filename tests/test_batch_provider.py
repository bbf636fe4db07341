"""Provider batch mode (the OpenAI Batch API) summarizes long items exactly as direct mode
does: the same model requests in the same rounds, one batch per round, each answer
collected and charged once. All against the fake OpenAI server's files and batches."""
from __future__ import annotations

import json
import re
from collections import Counter
from decimal import Decimal

import pytest
from sqlalchemy import text

from bot.core import tokens
from bot.core.pricing import PriceTable
from patterns.batch import provider
from patterns.batch.jobs import Item, JobStore
from patterns.batch.provider import poll_provider_jobs, submit
from tests.test_batch import worker
from tests.fakes.openai_server import Script, default_responder

TEAMS = ("platform", "billing", "search", "mobile", "data", "support")
INSTRUCTION = "Summarize in 3 bullets."


def long_text(sections: int, tag: str = "A") -> str:
    """A report of numbered sections (~200 tokens each), every sentence distinct."""
    return "\n\n".join(
        f"Section {tag}{i}: " + " ".join(
            f"In week {i} the {team} team closed ticket {tag}-{i * 100 + j} and wrote notes."
            for j, team in enumerate(TEAMS * 2))
        for i in range(sections))


def echo_40_words(body: dict) -> Script:
    """A deterministic answer (the first 40 words of the text), long enough that the part
    summaries of a long text need another round of splitting."""
    return Script(text=" ".join(body["messages"][-1]["content"].split()[:40]))


def call(body: dict) -> str:
    """What a chat request asks: model, messages, answer size, temperature."""
    return json.dumps([body["model"], body["messages"], body.get("max_tokens", body.get("max_completion_tokens")),
                       body.get("temperature")], sort_keys=True)


def batch_files(fake) -> list[list[dict]]:
    """The request lines of every JSONL file uploaded for a batch, in upload order."""
    return [[json.loads(line) for line in f["content"].decode().splitlines() if line.strip()]
            for f in fake.files.values() if f["purpose"] == "batch"]


def batches_created(fake) -> int:
    return sum(r.path == "/v1/batches" for r in fake.requests)


async def run_provider(app, job: str, *, max_polls: int = 30) -> dict:
    store = JobStore(app.services.db)
    for _ in range(max_polls):
        status = await store.status(job)
        if status["status"] == "done":
            return status
        await poll_provider_jobs(app.services)
    raise AssertionError(f"job {job} not done after {max_polls} polls: {status}")


async def usage_of(app, job: str) -> list:
    await app.services.ledger.flush()  # rows are written behind the answer
    async with app.services.db.session() as s:
        return (await s.execute(text(
            "SELECT channel AS item, outcome, cache_hit, cost_usd, prompt_tokens, completion_tokens, model, extra "
            "FROM usage WHERE workspace = :job ORDER BY id"), {"job": job})).all()


async def item_rows(app, job: str) -> list:
    async with app.services.db.session() as s:
        return (await s.execute(text(
            "SELECT item_id, status, result, error, round, stage_text, attempts, prompt_tokens, completion_tokens "
            "FROM batch_items WHERE job_id = :j ORDER BY seq"), {"j": job})).all()


# ----------------------------------------------------------------------------- same calls as direct mode


@pytest.mark.parametrize("context_tokens, sections, answers, rounds", [
    (12_000, 296, default_responder, [6, 1]),  # the issue's ~61.5k-token item: six parts, then the final call
    (1_500, 14, echo_40_words, [9, 2, 1]),     # the part summaries are split again before the final call
])
async def test_a_long_item_gets_the_same_calls_in_provider_mode_as_in_direct_mode(
        app, fake_llm, context_tokens, sections, answers, rounds):
    app.services.settings.context_tokens = context_tokens
    fake_llm.responder = answers
    item = Item("report", long_text(sections), INSTRUCTION)
    assert tokens.count(item.text) > context_tokens  # more than one call can take
    store = JobStore(app.services.db)

    direct = await store.create([item], model="gpt-4o-mini")
    await worker(app).run_until_idle(direct)
    direct_calls = [call(b) for b in fake_llm.chat_requests]

    batched = await store.create([item], model="gpt-4o-mini", mode="provider")
    done = await run_provider(app, batched)
    files = batch_files(fake_llm)

    assert len(fake_llm.chat_requests) == len(direct_calls)  # provider mode made no direct calls
    assert Counter(call(line["body"]) for f in files for line in f) == Counter(direct_calls)
    assert [len(f) for f in files] == rounds and batches_created(fake_llm) == len(rounds)  # one batch per round
    assert [line["custom_id"] for line in files[0]] == [f"0:0:{p}" for p in range(rounds[0])]
    final = files[-1][0]["body"]["messages"][0]["content"]
    assert final.startswith("These are summaries of consecutive parts")
    direct_status = await store.status(direct)
    assert direct_status["status"] == done["status"] == "done"
    assert done["results"] == direct_status["results"] and done["results"][0]["summary"]  # the same summary
    if len(rounds) > 1:
        assert done["provider_status"] == f"completed (round {len(rounds)})"

    prices = PriceTable()
    charged = await usage_of(app, batched)
    assert len(charged) == sum(rounds) and all(r.outcome == "ok" and not r.cache_hit for r in charged)
    for r in charged:  # every answer at half the list price
        assert abs(r.cost_usd - prices.cost("gpt-4o-mini", r.prompt_tokens, r.completion_tokens) / 2) <= Decimal("1e-8")
    assert sorted(r.extra["custom_id"] for r in charged) == sorted(line["custom_id"] for f in files for line in f)


async def test_short_items_take_one_batch_and_are_not_sent_again_while_a_long_one_goes_on(app, fake_llm):
    app.services.settings.context_tokens = 1_500
    fake_llm.responder = echo_40_words
    store = JobStore(app.services.db)
    short_only = await store.create([Item("memo", "The board approved the budget. Hiring starts in May.", INSTRUCTION)],
                                    model="gpt-4o-mini", mode="provider")
    status = await run_provider(app, short_only)
    [[line]] = batch_files(fake_llm)
    assert line["custom_id"] == "0:0:0" and line["body"]["messages"][0]["content"] == INSTRUCTION
    assert batches_created(fake_llm) == 1 and status["provider_status"] == "completed"
    [memo] = status["results"]
    assert memo == {"id": "memo", "status": "done", "summary": "The board approved the budget. Hiring starts in May."}

    fake_llm.reset()
    fake_llm.responder = echo_40_words
    mixed = await store.create([Item("memo", "Short note: the office moves on Friday.", INSTRUCTION),
                                Item("report", long_text(14), INSTRUCTION)], model="gpt-4o-mini", mode="provider")
    status = await run_provider(app, mixed)
    files = batch_files(fake_llm)
    assert [sorted({line["custom_id"].split(":")[0] for line in f}) for f in files] == [["0", "1"], ["1"], ["1"]]
    assert [r["status"] for r in status["results"]] == ["done", "done"]
    assert len(await usage_of(app, mixed)) == sum(len(f) for f in files)


# ----------------------------------------------------------------------------- crashes and failures


async def test_a_repeated_poll_after_a_crash_changes_nothing_and_charges_nothing_twice(app, fake_llm):
    app.services.settings.context_tokens = 1_500
    fake_llm.responder = echo_40_words
    store = JobStore(app.services.db)
    job = await store.create([Item("a", long_text(14, "A"), INSTRUCTION), Item("b", long_text(1, "B"), INSTRUCTION)],
                             model="gpt-4o-mini", mode="provider")
    first = await submit(app.services, job)
    await poll_provider_jobs(app.services)  # round 1 collected, round 2 sent
    after_round_1 = await item_rows(app, job)
    charged = await usage_of(app, job)
    assert [(r.status, r.round) for r in after_round_1] == [("pending", 1), ("done", 0)]
    assert after_round_1[0].stage_text.startswith("Part 1:\n")
    assert len(charged) == len(batch_files(fake_llm)[0]) and batches_created(fake_llm) == 2

    # the process died after collecting round 1 but before the job moved on to round 2
    async with app.services.db.session.begin() as s:
        await s.execute(text("UPDATE batch_jobs SET provider_batch_id = :b, provider_round = 0, "
                             "provider_status = 'completed' WHERE id = :id"), {"b": first, "id": job})
    await poll_provider_jobs(app.services)  # the same output file again
    assert await item_rows(app, job) == after_round_1
    assert await usage_of(app, job) == charged
    files = batch_files(fake_llm)
    assert batches_created(fake_llm) == 3 and files[2] == files[1]  # round 2 sent again, the same requests

    status = await run_provider(app, job)
    assert [r["status"] for r in status["results"]] == ["done", "done"]
    collected = [files[0], files[2], batch_files(fake_llm)[3]]  # the lost round-2 batch is never collected
    custom_ids = [r.extra["custom_id"] for r in await usage_of(app, job)]
    assert sorted(custom_ids) == sorted(line["custom_id"] for f in collected for line in f)
    assert len(custom_ids) == len(set(custom_ids))


async def test_a_failed_piece_fails_only_its_item_with_a_readable_error(app, fake_llm):
    app.services.settings.context_tokens = 1_500

    def answers(body: dict) -> Script:
        if "Section A5:" in body["messages"][-1]["content"]:
            return Script(status=500)
        return echo_40_words(body)

    fake_llm.responder = answers
    store = JobStore(app.services.db)
    job = await store.create([Item("a", long_text(14, "A"), INSTRUCTION), Item("b", long_text(14, "B"), INSTRUCTION),
                              Item("c", "A short memo about the picnic.", INSTRUCTION)], model="gpt-4o-mini", mode="provider")
    status = await run_provider(app, job)
    a, b, c = status["results"]
    assert a["status"] == "failed" and re.fullmatch(r"provider error: server_error \(part \d+ of 9\)", a["error"])
    assert b["status"] == c["status"] == "done" and b["summary"] and c["summary"]
    files = batch_files(fake_llm)
    assert all(not line["custom_id"].startswith("0:") for f in files[1:] for line in f)  # `a` is not sent on
    charged = Counter(r.item for r in await usage_of(app, job))
    assert charged == {"a": 8, "b": 12, "c": 1}  # every answer that came back, the failed one not


async def test_a_round_over_the_batch_api_limits_is_refused_with_a_clear_error(app, fake_llm, monkeypatch):
    monkeypatch.setattr(provider, "MAX_REQUESTS", 5)
    app.services.settings.context_tokens = 1_500
    store = JobStore(app.services.db)
    job = await store.create([Item("a", long_text(14), INSTRUCTION)], model="gpt-4o-mini", mode="provider")
    status = await run_provider(app, job)
    [a] = status["results"]
    assert a["status"] == "failed" and a["error"].startswith("this round needs 9 requests")
    assert "at most 5" in a["error"] and "direct mode" in a["error"]
    assert batches_created(fake_llm) == 0 and await usage_of(app, job) == []
