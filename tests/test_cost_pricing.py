"""Right model for the job, provider prompt caching read from the wire and priced at the
cached rate, and the cost report that shows it."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from bot.core.llm import ChatOptions
from bot.core.messages import CallInfo
from bot.core.models import Usage
from bot.core.pricing import PriceTable
from bot.core.reports import format_report, usage_report
from bot.core.settings import Settings


def test_fast_model_falls_back_to_the_chat_model_when_unset():
    ollama = Settings(_env_file=None, chat_model="llama3.1", openai_base_url="http://localhost:11434/v1")
    assert ollama.fast_model == "llama3.1"
    both = Settings(_env_file=None, chat_model="gpt-4o", fast_model="gpt-4o-mini")
    assert both.fast_model == "gpt-4o-mini"


async def test_summaries_use_the_fast_model_and_chat_the_chat_model(bot, fake_llm, app):
    app.settings.chat_model = "big-model"
    app.settings.fast_model = "small-model"
    await bot.send("/summarize a long text about the plan " * 5)
    await bot.send("@aibot how does the deploy pipeline work?")
    assert [r["model"] for r in fake_llm.chat_requests] == ["small-model", "big-model"]


def test_cached_input_tokens_are_priced_at_the_cached_rate():
    table = PriceTable()
    full = table.cost("gpt-4o-mini", 1_000_000, 0)
    half_cached = table.cost("gpt-4o-mini", 1_000_000, 0, cached_tokens=500_000)
    assert full == Decimal("0.15") and half_cached == Decimal("0.1125")  # 0.5M at 0.15 + 0.5M at 0.075
    custom = PriceTable('{"house": {"input": 1, "output": 2, "cached_input": 0.1}, "flat": [1, 2]}')
    assert custom.cost("house", 1_000_000, 0, cached_tokens=1_000_000) == Decimal("0.1")
    assert custom.cost("flat", 1_000_000, 0, cached_tokens=1_000_000) == Decimal(1)  # no cached rate: no discount


async def test_provider_cached_tokens_are_recorded_priced_and_reported(app, fake_llm):
    fake_llm.cache_min_tokens, fake_llm.cache_step = 64, 16
    system = {"role": "system", "content": "You answer from these sources. " + "Policy text word " * 80}
    call = CallInfo("rag", "test", "T1", "C1", "U1")
    opts = ChatOptions(model="gpt-4o-mini")
    await app.services.llm.complete([system, {"role": "user", "content": "first question?"}], call=call, options=opts)
    await app.services.llm.complete([system, {"role": "user", "content": "another one?"}], call=call, options=opts)

    assert await app.services.ledger.flush(timeout=10)  # usage rows are written behind the answers
    async with app.services.db.session() as s:
        rows = (await s.execute(select(Usage).order_by(Usage.id))).scalars().all()
    first, second = rows
    assert first.cached_tokens == 0 and second.cached_tokens >= 64  # the shared prefix, from the wire
    prices = PriceTable()
    assert second.cost_usd == prices.cost("gpt-4o-mini", second.prompt_tokens, second.completion_tokens,
                                          cached_tokens=second.cached_tokens)
    assert second.cost_usd < prices.cost("gpt-4o-mini", second.prompt_tokens, second.completion_tokens)

    report = await usage_report(app.services.db, by="model")
    assert report[0].cached_tokens == second.cached_tokens
    assert "prov-cached in" in format_report(report, by="model")
