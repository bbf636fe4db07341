"""The knowledge base end to end on Discord: attachments with a mention and `/kb` app
commands through the fake Discord (real discord.py), into the guild's knowledge base
(tenant = guild id), never visible to a Slack workspace."""
from __future__ import annotations

from tests.discord_env import BOT, discord_bot, fake, settle  # noqa: F401 (fixtures)
from tests.fakes.discord_server import FakeDiscord
from tests.test_kb import HANDBOOK

GUILD = FakeDiscord.GUILD_ID


def option(name: str, value, type: int = 3) -> dict:
    return {"name": name, "type": type, "value": value}


def edited_answer(fake: FakeDiscord, token: str) -> str:
    edits = [c.body for c in fake.calls if token in c.path and c.method == "PATCH" and c.path.endswith("/@original")]
    return edits[-1]["content"]


def private_answer(fake: FakeDiscord, token: str) -> str:
    """An ephemeral answer: the deferred placeholder is replaced by a follow-up only the asker sees."""
    body = fake.requests("POST", rf"/webhooks/{fake.APP_ID}/{token}$")[-1].body
    assert body["flags"] & 64
    return body["content"]


async def test_attachment_with_a_mention_is_ingested_into_the_guild_and_kb_commands_work(app, fake, discord_bot, fake_llm):
    att = fake.attachment("handbook.md", HANDBOOK, content_type="text/markdown")
    await fake.send_message(f"{BOT} add this to the knowledge base", attachments=[att])
    await settle(app, fake)
    assert "handbook.md" in fake.bot_messages()[-1]["content"]
    kb = app.services.kb
    [doc] = await kb.list(tenant=GUILD)
    assert doc.name == "handbook.md"
    # never visible to a Slack workspace (or any other tenant)
    assert await kb.search(tenant="T0FAKETEAM", query="how do I rotate an API key?", k=5) == []

    i = await fake.send_command("kb", [{"name": "list", "type": 1, "options": []}])
    await settle(app, fake)
    assert "handbook.md" in private_answer(fake, i["token"])

    i = await fake.send_command("kb", [{"name": "search", "type": 1,
                                        "options": [option("query", "how do I rotate an API key?")]}])
    await settle(app, fake)
    assert "Rotate" in private_answer(fake, i["token"])

    i = await fake.send_command("kb", [{"name": "remove", "type": 1, "options": [option("document", str(doc.id))]}])
    await settle(app, fake)
    assert edited_answer(fake, i["token"]) == f"Removed handbook.md (#{doc.id}) from the knowledge base."
    assert await kb.list(tenant=GUILD) == []


async def test_kb_add_app_command_with_a_file_ingests_it(app, fake, discord_bot):
    att = fake.attachment("faq.md", b"# Hours\n\nThe support desk is open from 9 to 5 on weekdays.",
                          content_type="text/markdown")
    i = await fake.send_command("kb", [{"name": "add", "type": 1, "options": [option("file", att["id"], type=11)]}],
                                resolved={"attachments": {att["id"]: att}})
    await settle(app, fake)
    assert "faq.md" in edited_answer(fake, i["token"])
    [doc] = await app.services.kb.list(tenant=GUILD)
    assert doc.name == "faq.md"


async def test_an_attachment_in_a_dm_goes_to_that_users_own_kb(app, fake, discord_bot):
    att = fake.attachment("notes.md", b"# Notes\n\nMy locker code is 4711.", content_type="text/markdown")
    await fake.send_message("", dm=True, attachments=[att])
    await settle(app, fake)
    assert "notes.md" in fake.bot_messages()[-1]["content"]
    kb = app.services.kb
    assert [d.name for d in await kb.list(tenant=f"dm:{FakeDiscord.USER_ID}")] == ["notes.md"]
    # not a tenant shared by everyone who DMs the bot, nor the guild
    assert await kb.list(tenant="dm") == [] and await kb.list(tenant=GUILD) == []
    assert await kb.search(tenant=f"dm:{FakeDiscord.USER_ID}2", query="what is my locker code?", k=3) == []


async def test_ask_app_command_is_deferred_then_answered_from_the_guild_kb(app, fake, discord_bot, fake_llm):
    await app.services.kb.ingest(tenant=GUILD, name="handbook.md", data=HANDBOOK)
    fake_llm.enqueue("Press Rotate under Keys in the admin console [1].")
    i = await fake.send_command("ask", [option("question", "how do I rotate an API key?")])
    await settle(app, fake)
    calls = [c for c in fake.calls if i["token"] in c.path]
    assert calls[0].path.endswith("/callback") and calls[0].body["type"] == 5  # deferred first
    answer = edited_answer(fake, i["token"])
    assert answer.startswith("Press Rotate") and "handbook.md" in answer.split("Sources", 1)[1]
    assert "press Rotate" in fake_llm.chat_requests[-1]["messages"][-1]["content"]


async def test_kb_add_app_command_with_pasted_text(app, fake, discord_bot):
    i = await fake.send_command("kb", [{"name": "add", "type": 1, "options": [
        option("text", "Deploys happen on Tuesdays after the standup.")]}])
    await settle(app, fake)
    assert edited_answer(fake, i["token"]).startswith("Added Deploys happen on Tuesdays")
    [hit] = await app.services.kb.search(tenant=GUILD, query="when do deploys happen?", k=1)
    assert hit.document.startswith("Deploys happen on Tuesdays")
