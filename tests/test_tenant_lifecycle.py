"""A workspace's data on request and after it removes the bot: export and deletion from
chat and from `aibot tenant`, Slack uninstall / token revocation and Discord guild
removal (tokens dropped at once, data deleted after the grace period, logged)."""
from __future__ import annotations

import asyncio
import json
import logging

from sqlalchemy import text

from bot.app import App
from tests.discord_env import connect, fake, settle  # noqa: F401 (fixtures)
from tests.fakes.discord_server import FakeDiscord
from tests.slack_oauth_support import distributed  # noqa: F401 (fixture)
from tests.slack_support import *  # noqa: F401,F403
from adapters.slack.adapter import SlackAdapter
from tests.harness import Harness
from tests.slack_support import SlackBot, load
from tests.test_kb_cli import aibot


async def fill(bot, fake_llm, *, tenant: str = "T1", platform: str = "test") -> None:
    """Documents, a setting, a schedule and a model call of one workspace."""
    await bot.app.services.kb.embedder.embed(["warm up"])
    kw = dict(tenant=tenant, platform=platform)
    await bot.send(f"/kb add Release notes of {tenant}: the launch is on Friday", **kw)
    await bot.send("/aibot settings set language French", **kw)
    await bot.send("/digest on 09:00 UTC", **kw)
    fake_llm.enqueue(f"An answer for {tenant}.")
    await bot.send("@aibot How do I reset my VPN password?", **kw)  # standalone: its answer is cached too


async def counts(app, tenant: str, platform: str = "test") -> dict[str, int]:
    q = {
        "documents": "SELECT count(*) FROM kb_documents WHERE tenant = :t",
        "passages": "SELECT count(*) FROM kb_chunks WHERE tenant = :t",
        "settings": "SELECT count(*) FROM workspace_settings WHERE tenant = :t AND platform = :p",
        "audit": "SELECT count(*) FROM settings_audit WHERE tenant = :t AND platform = :p",
        "schedules": "SELECT count(*) FROM digest_schedules WHERE tenant = :t AND platform = :p",
        "usage": "SELECT count(*) FROM usage WHERE workspace = :t AND platform = :p",
        "cached answers": "SELECT count(*) FROM answer_cache WHERE tenant = :t",
    }
    assert await app.services.ledger.flush(timeout=10)  # usage rows are written behind the answers
    async with app.services.db.session() as s:
        return {k: (await s.execute(text(v), dict(t=tenant, p=platform))).scalar() for k, v in q.items()}


async def test_admin_exports_and_deletes_the_workspace_data_from_chat(bot, fake_llm):
    await fill(bot, fake_llm, tenant="T1")
    await fill(bot, fake_llm, tenant="T2")
    [export] = await bot.send("/aibot export", tenant="T1")
    data = json.loads(export.split("```\n", 1)[1].rsplit("\n```", 1)[0])
    assert data["tenant"] == "T1" and [d["text"] for d in data["documents"]] == \
        ["Release notes of T1: the launch is on Friday"]
    assert data["settings"]["values"][0]["value"] == "French" and len(data["digest_schedules"]) == 1
    assert data["usage"] and "T2" not in export

    assert (await bot.send("/aibot delete-data", tenant="T1", is_admin=False))[0].startswith("Only workspace admins")
    [ask] = await bot.send("/aibot delete-data", tenant="T1")
    assert ask.endswith("To go ahead: `/aibot delete-data T1`.")
    assert (await counts(bot.app, "T1"))["documents"] == 1  # nothing deleted yet
    [done] = await bot.send("/aibot delete-data T1", tenant="T1")
    assert done.startswith("Deleted: ") and "1 documents" in done and "1 digest schedules" in done
    assert set((await counts(bot.app, "T1")).values()) == {0}
    assert all(n > 0 for n in (await counts(bot.app, "T2")).values())  # the other workspace keeps everything


async def test_aibot_tenant_export_and_delete_on_the_command_line(bot, fake_llm, env, app):
    await fill(bot, fake_llm, tenant="T1")
    await fill(bot, fake_llm, tenant="T2")
    out = await asyncio.to_thread(aibot, "tenant", "export", "test:T1", env=env)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["tenant"] == "T1" and len(data["documents"]) == 1 and "T2" not in out.stdout
    bad = await asyncio.to_thread(aibot, "tenant", "export", "T1", env=env)
    assert bad.returncode == 2 and "PLATFORM:TENANT" in bad.stderr and "Traceback" not in bad.stderr
    gone = await asyncio.to_thread(aibot, "tenant", "delete", "test:T1", "--yes", env=env)
    assert gone.returncode == 0 and "1 documents" in gone.stdout
    assert set((await counts(app, "T1")).values()) == {0}
    assert all(n > 0 for n in (await counts(app, "T2")).values())


async def test_slack_uninstall_keeps_data_for_the_grace_period_then_deletes_and_logs_it(slack, fake_llm, caplog):
    app = slack.app
    await fill(Harness(app), fake_llm, tenant="T0FAKETEAM", platform="slack")
    await slack.event({"token": "x", "team_id": "T0FAKETEAM", "api_app_id": "A1", "type": "event_callback",
                       "event_id": "EvUninstall", "event_time": 1, "event": {"type": "app_uninstalled"}})
    tenants = app.services.tenants
    state = await tenants.status("slack", "T0FAKETEAM")
    assert state["status"] == "removed" and state["reason"] == "app_uninstalled"
    assert 29.9 <= (state["delete_after"] - state["since"]).total_seconds() / 86400 <= 30.1
    assert (await counts(app, "T0FAKETEAM", "slack"))["documents"] == 1  # kept during the grace period
    assert await tenants.sweep() == []

    async with app.services.db.session.begin() as s:  # 30 days later
        await s.execute(text("UPDATE tenant_lifecycle SET delete_after = now() - interval '1 second'"))
    with caplog.at_level(logging.WARNING, logger="bot.core.tenants"):
        assert await tenants.sweep() == [("slack", "T0FAKETEAM")]
    assert set((await counts(app, "T0FAKETEAM", "slack")).values()) == {0}
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "1 documents" in logged and "1 digest schedules" in logged and "usage rows" in logged
    assert (await tenants.status("slack", "T0FAKETEAM"))["status"] == "deleted"


async def test_grace_zero_deletes_at_once(settings, fake_llm, fake_slack, slack_settings):
    async with await App.open(settings.model_copy(update={"tenant_grace_days": 0})) as app:
        await fill(Harness(app), fake_llm, tenant="T0FAKETEAM", platform="slack")
        adapter = SlackAdapter(settings=slack_settings)
        await app.attach(adapter)
        await fake_slack.wait_connected()
        bot = SlackBot(app, adapter, fake_slack)
        try:
            await bot.event({"token": "x", "team_id": "T0FAKETEAM", "api_app_id": "A1", "type": "event_callback",
                             "event_id": "EvRevoked", "event_time": 1,
                             "event": {"type": "tokens_revoked", "tokens": {"bot": ["U0BOTUSER"]}}})
            assert set((await counts(app, "T0FAKETEAM", "slack")).values()) == {0}
        finally:
            await adapter.stop()


async def test_oauth_uninstall_drops_the_token_at_once_and_a_reinstall_cancels_the_deletion(distributed, fake_llm):
    fake = distributed.fake
    await distributed.install("T0AAA")
    await distributed.install("T0BBB")
    fake_llm.enqueue("First.")
    await distributed.mention("T0AAA", "hi")
    await distributed.post({"token": "x", "team_id": "T0AAA", "api_app_id": "A1", "type": "event_callback",
                            "event_id": "EvGone", "event_time": 1, "event": {"type": "app_uninstalled"}})
    fake.revoke("T0AAA")
    assert await distributed.adapter.installations.async_find_bot(enterprise_id=None, team_id="T0AAA") is None
    before, asked = len(fake.calls), len(fake_llm.chat_requests)
    payload = load("app_mention", event_id="EvAfter", text="<@U0BOT0001> still there?")
    payload["team_id"] = "T0AAA"
    await distributed.post(payload)
    assert not [c for c in fake.calls[before:] if c.method.startswith("chat.")]  # no token, no call
    assert len(fake_llm.chat_requests) == asked
    conv = distributed.adapter.conversation(tenant="T0AAA", channel="C1")
    try:
        await conv.post("a digest")
        raise AssertionError("posted for an uninstalled workspace")
    except Exception as exc:
        assert "not installed" in str(exc)
    assert (await distributed.app.services.tenants.status("slack", "T0AAA"))["status"] == "removed"
    fake_llm.enqueue("B still works.")
    await distributed.mention("T0BBB", "hi")
    assert fake.bot_messages()[-1].text == "B still works."

    await distributed.install("T0AAA")  # back within the grace period
    assert await distributed.app.services.tenants.status("slack", "T0AAA") is None


async def test_discord_removal_from_a_guild_schedules_its_deletion(app, fake, fake_llm):
    adapter = await connect(app, fake)
    try:
        await fill(Harness(app), fake_llm, tenant=FakeDiscord.GUILD_ID, platform="discord")
        await fake.remove_bot()
        await settle(app, fake)
        for _ in range(100):
            state = await app.services.tenants.status("discord", FakeDiscord.GUILD_ID)
            if state is not None:
                break
            await asyncio.sleep(0.05)
        assert state["status"] == "removed" and state["reason"] == "guild_removed"
        assert (await counts(app, FakeDiscord.GUILD_ID, "discord"))["documents"] == 1
    finally:
        await adapter.stop()


async def test_a_slack_workspace_that_comes_back_keeps_its_data(slack, fake_llm):
    app = slack.app
    await slack.event({"token": "x", "team_id": "T0FAKETEAM", "api_app_id": "A1", "type": "event_callback",
                       "event_id": "EvBye", "event_time": 1, "event": {"type": "app_uninstalled"}})
    assert (await app.services.tenants.status("slack", "T0FAKETEAM"))["status"] == "removed"
    fake_llm.enqueue("Welcome back.")
    await slack.event(load("app_mention", event_id="EvBack"))  # installed again by hand
    assert await app.services.tenants.status("slack", "T0FAKETEAM") is None
    assert slack.fake.bot_messages()[-1].text == "Welcome back."
