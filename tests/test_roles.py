"""Admins and members on Slack and Discord, through the real SDKs and the fakes: the
platform says who administers the workspace (Slack `users.info` is_admin/is_owner,
Discord's Manage Server permission), AIBOT_ADMINS adds the bot's own admins, and
admin-only actions are refused to members in one sentence naming who can do them."""
from __future__ import annotations

from pydantic import SecretStr

from adapters.slack.adapter import SlackAdapter
from adapters.slack.settings import SlackSettings
from tests.discord_env import connect, discord_bot, fake, settle  # noqa: F401 (fixtures)
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.slack_server import APP_TOKEN, BOT_TOKEN
from tests.slack_support import *  # noqa: F401,F403

ADMIN, MEMBER, OTHER = "U2147483697", "U0ALICE", "U0BOB"
SLACK_REFUSAL = "Only workspace admins and owners (or the bot's admins) can"
DISCORD_REFUSAL = "Only members with the Manage Server permission (or the bot's admins) can"


def private(fake) -> str:
    return fake.responses[-1]["text"]


async def test_slack_member_is_refused_admin_commands_with_one_sentence_and_admin_is_not(slack, fake_llm):
    fake = slack.fake
    await slack.command("/ai-stats", user_id=MEMBER, user_name="alice")
    assert private(fake) == f"{SLACK_REFUSAL} use /ai-stats."
    await slack.command("/digest", "on 09:00", user_id=MEMBER, user_name="alice")
    assert private(fake) == f"{SLACK_REFUSAL} turn a channel's daily digest on or off."
    assert await slack.app.feature(__import__("patterns.batch", fromlist=["Batch"]).Batch).digests.store.all() == []
    await slack.command("/digest", "status", user_id=MEMBER, user_name="alice")  # members may look
    assert not private(fake).startswith("Only")

    await slack.command("/ai-stats", user_id=ADMIN, user_name="Steve")
    assert private(fake).startswith("No model calls") or private(fake).startswith("Model usage")
    await slack.command("/digest", "on 09:00 UTC", user_id=ADMIN, user_name="Steve")
    assert "09:00" in private(fake) or "09:00" in fake.calls_to("chat.postMessage")[-1].args["text"]


async def test_slack_members_remove_their_own_documents_admins_anyones(slack):
    fake = slack.fake
    kb = slack.app.services.kb
    await kb.embedder.embed(["warm up"])  # the model loads once, outside the settle timeout
    await slack.command("/kb", "add Alice's notes on the release plan", user_id=MEMBER, user_name="alice")
    await slack.command("/kb", "add Bob's notes on the budget", user_id=OTHER, user_name="bob")
    docs = {d.owner: d for d in await kb.list(tenant="T0FAKETEAM")}
    assert set(docs) == {MEMBER, OTHER}

    await slack.command("/kb", f"remove {docs[OTHER].id}", user_id=MEMBER, user_name="alice")
    assert private(fake) == f"{SLACK_REFUSAL} remove documents other people added."
    assert len(await kb.list(tenant="T0FAKETEAM")) == 2  # nothing changed

    await slack.command("/kb", f"remove {docs[MEMBER].id}", user_id=MEMBER, user_name="alice")
    assert "Removed" in fake.calls_to("chat.postMessage")[-1].args["text"]
    await slack.command("/kb", f"remove {docs[OTHER].id}", user_id=ADMIN, user_name="Steve")
    assert await kb.list(tenant="T0FAKETEAM") == []


async def test_slack_owner_counts_as_admin_and_a_promotion_counts_once_the_role_cache_expires(app, fake_slack):
    settings = SlackSettings.load(env_file=None, bot_token=SecretStr(BOT_TOKEN), app_token=SecretStr(APP_TOKEN),
                                  api_url=fake_slack.base_url, role_cache_seconds=0)
    adapter = SlackAdapter(settings=settings)
    await app.attach(adapter)
    await fake_slack.wait_connected()
    bot = SlackBot(app, adapter, fake_slack)
    try:
        await bot.command("/ai-stats", user_id=MEMBER, user_name="alice")
        assert fake_slack.responses[-1]["text"].startswith("Only workspace admins and owners")
        fake_slack.owners.add(MEMBER)  # made an owner in Slack's admin pages
        await bot.command("/ai-stats", user_id=MEMBER, user_name="alice")
        assert not fake_slack.responses[-1]["text"].startswith("Only")
        assert len(fake_slack.calls_to("users.info")) >= 2  # asked again, not remembered forever
    finally:
        await adapter.stop()


async def test_bot_admins_from_aibot_admins_may_do_admin_things(settings, fake_slack, slack_settings):
    from bot.app import App

    configured = settings.model_copy(update={"admins": f"slack:T0FAKETEAM:{MEMBER}, discord:42"})
    async with await App.open(configured) as app:
        adapter = SlackAdapter(settings=slack_settings)
        await app.attach(adapter)
        await fake_slack.wait_connected()
        bot = SlackBot(app, adapter, fake_slack)
        try:
            await bot.command("/ai-stats", user_id=MEMBER, user_name="alice")
            assert not fake_slack.responses[-1]["text"].startswith("Only")
            await bot.command("/ai-stats", user_id=OTHER, user_name="bob")
            assert fake_slack.responses[-1]["text"] == f"{SLACK_REFUSAL} use /ai-stats."
        finally:
            await adapter.stop()


def option(name: str, value, type: int = 3) -> dict:
    return {"name": name, "type": type, "value": value}


def private_answer(fake: FakeDiscord, token: str) -> str:
    return fake.requests("POST", rf"/webhooks/{fake.APP_ID}/{token}$")[-1].body["content"]


async def test_discord_admin_commands_need_manage_server_by_default_and_members_are_refused(app, fake, discord_bot):
    tree = discord_bot.tree
    assert tree.get_command("ai-stats").default_permissions.manage_guild  # hidden from members by Discord
    # a member who still reaches it (a server that changed the command's permissions)
    i = await fake.send_command("ai-stats", user=FakeDiscord.MEMBER_ID)
    await settle(app, fake)
    assert private_answer(fake, i["token"]) == f"{DISCORD_REFUSAL} use /ai-stats."
    i = await fake.send_command("digest", [option("action", "on"), option("time", "09:00")], user=FakeDiscord.MEMBER_ID)
    await settle(app, fake)
    assert private_answer(fake, i["token"]) == f"{DISCORD_REFUSAL} turn a channel's daily digest on or off."

    i = await fake.send_command("ai-stats")  # the default user has the Moderator role (Manage Server)
    await settle(app, fake)
    assert not private_answer(fake, i["token"]).startswith("Only")


async def test_discord_members_remove_only_their_own_documents(app, fake, discord_bot):
    await app.services.kb.embedder.embed(["warm up"])
    kb_add = lambda text: [{"name": "add", "type": 1, "options": [option("text", text)]}]  # noqa: E731
    await fake.send_command("kb", kb_add("Moderator notes on the roadmap"))
    await fake.send_command("kb", kb_add("Member notes on the holidays"), user=FakeDiscord.MEMBER_ID)
    await settle(app, fake)
    docs = {d.owner: d for d in await app.services.kb.list(tenant=FakeDiscord.GUILD_ID)}
    assert set(docs) == {FakeDiscord.USER_ID, FakeDiscord.MEMBER_ID}

    remove = lambda doc: [{"name": "remove", "type": 1, "options": [option("document", str(doc))]}]  # noqa: E731
    i = await fake.send_command("kb", remove(docs[FakeDiscord.USER_ID].id), user=FakeDiscord.MEMBER_ID)
    await settle(app, fake)
    assert private_answer(fake, i["token"]) == f"{DISCORD_REFUSAL} remove documents other people added."
    i = await fake.send_command("kb", remove(docs[FakeDiscord.MEMBER_ID].id), user=FakeDiscord.MEMBER_ID)
    await settle(app, fake)
    assert fake.messages[fake._originals[i["token"]]]["content"].startswith("Removed")


async def test_discord_message_author_roles_come_from_the_guild(app, fake, discord_bot):
    seen = []

    async def spy(ctx, msg):
        seen.append((msg.user, msg.is_admin))
        return "ok"

    app.router.answerers.insert(0, spy)
    await fake.send_message(f"<@{fake.BOT_ID}> hi")
    await fake.send_message(f"<@{fake.BOT_ID}> hi", author=fake.user(FakeDiscord.MEMBER_ID, name="mia"))
    await fake.send_message(f"<@{fake.BOT_ID}> hi", author=fake.user(FakeDiscord.OWNER_ID, name="olga"))
    await settle(app, fake)
    assert sorted(seen) == sorted([(FakeDiscord.USER_ID, True), (FakeDiscord.MEMBER_ID, False),
                                   (FakeDiscord.OWNER_ID, True)])
