"""Files shared with the bot: downloaded from url_private with the bot token and handed
to the core's ingestion entry point; refused with a clear reason when they can't be."""
from __future__ import annotations

from tests.slack_support import *  # noqa: F401,F403
from tests.slack_support import load

DM = "D024BE91L"


def file_event(info: dict, **event) -> dict:
    payload = load("message_file_share", **event)
    payload["event"]["files"] = [{k: info[k] for k in ("id", "name", "title", "mimetype", "filetype", "size",
                                                       "mode", "is_external", "url_private", "url_private_download")}]
    return payload


def recording_ingest(slack) -> list:
    got: list = []

    @slack.app.router.on_ingest
    async def ingest(ctx, msg):
        for att in msg.attachments:
            data = await ctx.conv.download(att)
            got.append((att.name, data))
        return f"Added {', '.join(a.name for a in msg.attachments)} to the knowledge base."

    return got


async def test_file_shared_in_a_dm_is_downloaded_with_the_bot_token_and_ingested(slack):
    got = recording_ingest(slack)
    content = b"# Handbook\n\nRotate API keys every 90 days.\n"
    info = slack.fake.add_file(name="handbook.md", content=content, mimetype="text/markdown", filetype="markdown")
    await slack.event(file_event(info))
    assert got == [("handbook.md", content)]
    assert slack.fake.downloads == [{"file": info["id"], "authorization_ok": True}]
    assert slack.fake.bot_messages(DM)[-1].text == "Added handbook.md to the knowledge base."


async def test_file_with_an_add_to_kb_mention_in_a_channel_is_ingested(slack):
    got = recording_ingest(slack)
    info = slack.fake.add_file(name="notes.txt", content=b"release notes")
    payload = file_event(info, type="app_mention", channel="C123ABC456", text="<@U0BOTUSER> add this to the knowledge base")
    payload["event"].pop("subtype")
    payload["event"].pop("channel_type")
    await slack.event(payload)
    assert got == [("notes.txt", b"release notes")]
    assert slack.fake.bot_messages("C123ABC456")[-1].thread_ts == payload["event"]["ts"]


async def test_oversized_file_is_refused_with_the_limit_and_never_downloaded(slack):
    got = recording_ingest(slack)
    limit_mb = slack.adapter.settings.max_file_mb
    info = slack.fake.add_file(name="huge.pdf", content=b"x" * 10, mimetype="application/pdf", filetype="pdf",
                               size=int((limit_mb + 5) * 1024 * 1024))
    await slack.event(file_event(info))
    assert got == [] and slack.fake.downloads == []
    reply = slack.fake.bot_messages(DM)[-1].text
    assert "huge.pdf is too large" in reply and f"{limit_mb:.1f} MB" in reply


async def test_a_link_to_an_external_file_is_refused_clearly(slack):
    got = recording_ingest(slack)
    info = slack.fake.add_file(name="Roadmap (Google Doc)", content=b"", mode="external", is_external=True)
    await slack.event(file_event(info))
    assert got == []
    assert "not a file uploaded to Slack" in slack.fake.bot_messages(DM)[-1].text
