"""The knowledge base end to end on Slack: a file shared with the bot is downloaded from
the fake Slack (real slack-bolt/slack_sdk), ingested into that workspace's knowledge base
(tenant = team id), then listed, searched and removed with `/kb` slash commands."""
from __future__ import annotations

from sqlalchemy import text

from tests.slack_support import *  # noqa: F401,F403
from tests.test_kb import HANDBOOK
from tests.test_slack_files import DM, file_event

TEAM = "T0FAKETEAM"


async def chunks(app) -> int:
    async with app.services.db.engine.connect() as conn:
        return (await conn.execute(text("SELECT count(*) FROM kb_chunks"))).scalar()


def last_response(slack) -> str:
    """The bot's answer to the last slash command (posted in the command's channel)."""
    return slack.fake.bot_messages("C123ABC456")[-1].text


def last_private(slack) -> str:
    """The bot's answer that only the asker sees (`/kb list`, `/kb search`)."""
    return slack.fake.ephemeral[-1]["text"]


async def test_a_file_shared_in_a_dm_lands_in_the_workspace_kb_and_kb_commands_manage_it(slack, app, fake_llm):
    info = slack.fake.add_file(name="handbook.md", content=HANDBOOK, mimetype="text/markdown", filetype="markdown")
    await slack.event(file_event(info))
    assert slack.fake.downloads == [{"file": info["id"], "authorization_ok": True}]
    assert "handbook.md" in slack.fake.bot_messages(DM)[-1].text

    kb = app.services.kb
    docs = await kb.list(tenant=TEAM)
    assert [d.name for d in docs] == ["handbook.md"]
    assert await kb.search(tenant="T0OTHERTEAM", query="how do I rotate an API key?", k=5) == []

    public_before = len(slack.fake.bot_messages("C123ABC456"))
    await slack.command("/kb", "list")
    assert "handbook.md" in last_private(slack)
    await slack.command("/kb", "search how do I rotate an API key?")
    assert "Rotate" in last_private(slack)
    assert len(slack.fake.bot_messages("C123ABC456")) == public_before  # nothing posted to the channel
    assert fake_llm.chat_requests == []  # search never calls the model

    await slack.command("/kb", f"remove {docs[0].id}")
    assert last_response(slack) == f"Removed handbook.md (#{docs[0].id}) from the knowledge base."
    assert await kb.list(tenant=TEAM) == [] and await chunks(app) == 0


async def test_a_corrupt_file_gets_one_refusal_and_nothing_is_stored(slack, app):
    info = slack.fake.add_file(name="report.pdf", content=b"%PDF-1.7 this is not really a pdf",
                               mimetype="application/pdf", filetype="pdf")
    await slack.event(file_event(info))
    replies = slack.fake.bot_messages(DM)
    assert len(replies) == 1 and "report.pdf" in replies[0].text
    assert "Traceback" not in replies[0].text
    assert await app.services.kb.list(tenant=TEAM) == [] and await chunks(app) == 0


async def share_handbook(slack) -> None:
    info = slack.fake.add_file(name="handbook.md", content=HANDBOOK, mimetype="text/markdown", filetype="markdown")
    await slack.event(file_event(info))


async def test_ask_streams_an_answer_grounded_in_the_shared_file_with_its_citation(slack, fake_llm):
    await share_handbook(slack)
    fake_llm.enqueue("Open the admin console, choose Keys and press Rotate [1].")
    await slack.command("/ask", "how do I rotate an API key?")
    prompt = fake_llm.chat_requests[-1]["messages"][-1]["content"]
    assert "press Rotate" in prompt and "handbook.md, § Security > API keys" in prompt
    answer = last_response(slack)
    assert answer.startswith("Open the admin console")
    assert "handbook.md" in answer.split("Sources", 1)[1]


async def test_a_strong_mention_goes_to_rag_and_chit_chat_to_plain_chat(slack, fake_llm):
    await share_handbook(slack)
    fake_llm.enqueue("Refunds go back to the card within five business days [1].")
    await slack.event(load("app_mention", event_id="Ev-kb-1", text="<@U0BOTUSER> how long until a refund is paid back to the card?"))
    assert fake_llm.chat_requests[-1]["messages"][0]["content"].startswith("You answer questions for a team using only")
    assert "Refunds" in slack.fake.bot_messages("C123ABC456")[-1].text.split("Sources", 1)[1]

    fake_llm.enqueue("Good morning! How can I help?")
    await slack.event(load("app_mention", event_id="Ev-kb-2", ts="1700000001.000200",
                           text="<@U0BOTUSER> good morning, how are you?"))
    assert slack.fake.bot_messages("C123ABC456")[-1].text == "Good morning! How can I help?"
    assert "Sources" not in fake_llm.chat_requests[-1]["messages"][-1]["content"]


async def test_another_workspace_never_gets_the_document(slack, fake_llm):
    await share_handbook(slack)
    await slack.command("/ask", "how do I rotate an API key?", team_id="T0OTHERTEAM")
    assert last_response(slack).startswith("That is not in the knowledge base")
    await slack.command("/kb", "search how do I rotate an API key?", team_id="T0OTHERTEAM")
    assert last_private(slack) == "Nothing found: the knowledge base is empty."
    assert fake_llm.chat_requests == []


async def test_an_unsupported_file_gets_one_refusal_and_nothing_is_stored(slack, app):
    info = slack.fake.add_file(name="setup.exe", content=b"MZ\x90\x00binary", mimetype="application/octet-stream",
                               filetype="binary")
    await slack.event(file_event(info))
    [reply] = slack.fake.bot_messages(DM)
    assert "setup.exe" in reply.text
    assert await app.services.kb.list(tenant=TEAM) == [] and await chunks(app) == 0


async def test_kb_add_pasted_text_and_a_file_with_an_add_mention_in_a_channel(slack, app):
    await slack.command("/kb", "add Deploys happen on Tuesdays after the standup.")
    assert last_response(slack).startswith("Added Deploys happen on Tuesdays")

    info = slack.fake.add_file(name="notes.md", content=b"# Notes\n\nThe office closes at 6 pm on Fridays.",
                               mimetype="text/markdown", filetype="markdown")
    payload = file_event(info, type="app_mention", channel="C123ABC456",
                         text="<@U0BOTUSER> add this to the knowledge base")
    payload["event"].pop("subtype")
    payload["event"].pop("channel_type")
    await slack.event(payload)
    assert "notes.md" in slack.fake.bot_messages("C123ABC456")[-1].text
    names = {d.name for d in await app.services.kb.list(tenant=TEAM)}
    assert "notes.md" in names and any(n.startswith("Deploys happen") for n in names)
    [hit] = await app.services.kb.search(tenant=TEAM, query="when does the office close on Friday?", k=1)
    assert hit.document == "notes.md"
