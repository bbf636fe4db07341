"""Images sent with a question reach a vision-capable chat model as image parts
(`data:` URLs), downloaded from Slack with the bot token and from Discord's CDN; a model
that can't see gets one clear sentence instead; big images are refused; nothing is kept."""
from __future__ import annotations

import base64

from sqlalchemy import text

from tests.discord_env import BOT, discord_bot, fake, settle  # noqa: F401 (fixtures)
from tests.slack_support import *  # noqa: F401,F403
from tests.slack_support import load

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
DM = "D024BE91L"


def slack_file(info: dict) -> dict:
    return {k: info[k] for k in ("id", "name", "title", "mimetype", "filetype", "size", "mode", "is_external",
                                 "url_private", "url_private_download")}


def image_parts(request: dict) -> tuple[str, list[str]]:
    """The question's text and the image URLs of the last user message."""
    content = request["messages"][-1]["content"]
    assert isinstance(content, list), content
    texts = [p["text"] for p in content if p["type"] == "text"]
    urls = [p["image_url"]["url"] for p in content if p["type"] == "image_url"]
    return " ".join(texts), urls


async def test_slack_dm_screenshot_goes_to_the_model_as_an_image_part(slack, app, fake_llm):
    info = slack.fake.add_file(name="screenshot.png", content=PNG, mimetype="image/png", filetype="png")
    fake_llm.enqueue("It shows an error dialog.")
    payload = load("message_file_share", text="what does this error mean?", files=[slack_file(info)])
    await slack.event(payload)

    question, urls = image_parts(fake_llm.chat_requests[-1])
    assert question.endswith("what does this error mean?")
    assert urls == ["data:image/png;base64," + base64.b64encode(PNG).decode()]
    assert slack.fake.downloads == [{"file": info["id"], "authorization_ok": True}]  # url_private + bot token
    assert slack.fake.bot_messages(DM)[-1].text == "It shows an error dialog."
    async with app.services.db.session() as s:  # not ingested, not stored anywhere
        assert (await s.execute(text("SELECT count(*) FROM kb_documents"))).scalar() == 0
        extras = (await s.execute(text("SELECT coalesce(string_agg(extra::text, ''), '') FROM usage"))).scalar()
    assert "base64" not in extras


async def test_slack_mention_with_an_image_in_a_channel(slack, fake_llm):
    info = slack.fake.add_file(name="chart.jpg", content=PNG, mimetype="image/jpeg", filetype="jpg")
    await slack.event(load("app_mention", files=[slack_file(info)]))
    _, urls = image_parts(fake_llm.chat_requests[-1])
    assert len(urls) == 1 and urls[0].startswith("data:image/jpeg;base64,")


async def test_a_model_that_cannot_see_gets_one_clear_sentence_and_no_call(slack, app, fake_llm):
    app.settings.chat_model = "llama3.1:8b"
    info = slack.fake.add_file(name="screenshot.png", content=PNG, mimetype="image/png", filetype="png")
    await slack.event(load("message_file_share", text="what is this?", files=[slack_file(info)]))
    assert fake_llm.chat_requests == [] and slack.fake.downloads == []
    reply = slack.fake.bot_messages(DM)[-1].text
    assert "can't look at images" in reply and "llama3.1:8b" in reply and "AIBOT_VISION_MODELS" in reply


async def test_an_image_over_the_limit_is_refused_before_download(slack, fake_llm):
    big = b"\x89PNG" + b"0" * (6 * 1024 * 1024)
    info = slack.fake.add_file(name="huge.png", content=big, mimetype="image/png", filetype="png")
    await slack.event(load("message_file_share", text="look", files=[slack_file(info)]))
    assert fake_llm.chat_requests == [] and slack.fake.downloads == []
    assert "huge.png is too large for me to look at (6.0 MB; the limit is 5.0 MB)" in slack.fake.bot_messages(DM)[-1].text


async def test_discord_mention_with_an_image_attachment(app, fake, fake_llm, discord_bot):
    att = fake.attachment("diagram.webp", PNG, content_type="image/webp")
    fake_llm.enqueue("A network diagram.")
    await fake.send_message(f"{BOT} what is in this picture?", attachments=[att])
    await settle(app, fake)
    question, urls = image_parts(fake_llm.chat_requests[-1])
    assert question.endswith("what is in this picture?")
    assert urls == ["data:image/webp;base64," + base64.b64encode(PNG).decode()]
    assert fake.bot_messages()[-1]["content"] == "A network diagram."
