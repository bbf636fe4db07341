"""Budgets refuse with one clear sentence (which limit, when it resets) and charge
nothing; cost reports group by any dimension, and `/ai-stats` shows a workspace only
its own figures."""
from __future__ import annotations

from sqlalchemy import func, select

from bot.core.costs import CostSettings
from bot.core.models import Usage


async def _count(app) -> int:
    assert await app.services.ledger.flush(timeout=10)  # usage rows are written behind the answers
    async with app.services.db.session() as s:
        return int((await s.execute(select(func.count()).select_from(Usage))).scalar_one())


async def test_over_the_daily_workspace_budget_the_bot_says_which_limit_and_charges_nothing(bot, app, fake_llm):
    costs = app.settings.section(CostSettings)
    costs.workspace_daily_usd = 0.000001
    await bot.send("@aibot and what about the first answer?")  # a follow-up: no cache, a paid call
    calls, rows = len(fake_llm.chat_requests), await _count(app)
    refused = await bot.send("@aibot and what about the second one?")
    assert len(refused) == 1 and "this workspace's daily budget of $0.00 is used up" in refused[0]
    assert "resets at" in refused[0] and "00:00 UTC" in refused[0] and "Traceback" not in refused[0]
    assert len(fake_llm.chat_requests) == calls and await _count(app) == rows  # no call, nothing charged
    # another workspace has its own budget
    assert "budget" not in (await bot.send("@aibot and what about the third one?", tenant="T2"))[0]
    refused_cmd = await bot.send("/summarize some text to summarize for the team")
    assert "daily budget" in refused_cmd[0]


async def test_user_budget_and_request_rate(bot, app, fake_llm):
    costs = app.settings.section(CostSettings)
    costs.user_requests_per_minute = 1
    await bot.send("@aibot and the first one?", user="U1")
    limited = await bot.send("@aibot and the second one?", user="U1")
    assert "limit of 1 model requests per minute" in limited[0]
    assert "limit" not in (await bot.send("@aibot and the other one?", user="U2"))[0]
    costs.user_requests_per_minute = 0
    costs.user_monthly_usd = 0.000001
    monthly = await bot.send("@aibot and the fourth one?", user="U1")
    assert "your monthly budget" in monthly[0] and "resets at" in monthly[0]


async def test_a_cache_hit_is_free_and_allowed_over_budget(bot, app, fake_llm):
    await bot.send("@aibot How do I reset my VPN password?")
    app.settings.section(CostSettings).workspace_daily_usd = 0.000001
    hit = await bot.send("@aibot How do I reset my VPN password?", user="U2")
    assert "cached answer" in hit[0] and len(fake_llm.chat_requests) == 1


async def test_ai_stats_shows_only_this_workspaces_figures_by_any_dimension(bot, app, fake_llm):
    await bot.send("@aibot and what about A?", tenant="T1", channel="C-alpha")
    await bot.send("@aibot and what about B?", tenant="T2", channel="C-secret-beta")
    await bot.send("@aibot How do I reset my VPN password?", tenant="T1", channel="C-alpha")
    await bot.send("@aibot How do I reset my VPN password?", tenant="T1", channel="C-gamma", user="U5")
    table = (await bot.send("/ai-stats channel", tenant="T1"))[0]
    assert "C-alpha" in table and "C-gamma" in table and "C-secret-beta" not in table
    assert "saved $" in table and "Cache hits: 1" in table
    by_user = (await bot.send("/ai-stats 24h user", tenant="T1"))[0]
    assert "U5" in by_user and "last 24h" in by_user
    refused = (await bot.send("/ai-stats 24h workspace", tenant="T1"))[0]  # no other workspace's rows, ever
    assert "/ai-stats [24h] [pattern|channel|user|model]" in refused
    other = (await bot.send("/ai-stats channel", tenant="T2"))[0]
    assert "C-secret-beta" in other and "C-alpha" not in other


async def test_a_monthly_budget_set_by_a_workspace_admin_is_enforced_for_that_workspace_only(bot, app, fake_llm):
    set_reply = await bot.send("/aibot settings set monthly_budget_usd 0.000001")
    assert "monthly_budget_usd" in set_reply[0]
    await bot.send("@aibot and what about the first answer?")  # a follow-up: no cache, a paid call
    calls, rows = len(fake_llm.chat_requests), await _count(app)
    refused = await bot.send("@aibot and what about the second one?")
    assert "this workspace's monthly budget (set by its admins)" in refused[0] and "resets at" in refused[0]
    assert len(fake_llm.chat_requests) == calls and await _count(app) == rows  # no call, nothing charged
    assert "budget" not in (await bot.send("@aibot and what about the third one?", tenant="T2"))[0]
