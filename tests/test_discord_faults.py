"""Discord failures handled as Discord documents them: a reply deleted while it streams
ends the answer quietly (404 Unknown Message), and a channel where the bot lost Send
Messages (403 Missing Permissions) gets the answer by DM, saying why."""
from __future__ import annotations

from tests.discord_env import BOT, discord_bot, fake, settle  # noqa: F401 (fixtures)
from tests.fakes.openai_server import Script

WORDS = " ".join(f"word{i}" for i in range(60)) + " end."


async def test_a_reply_deleted_while_it_streams_ends_the_answer_quietly(app, fake, fake_llm, discord_bot):
    fake_llm.enqueue(Script(text=WORDS, tokens_per_second=20))
    await fake.send_message(f"{BOT} tell me a story")
    await fake_wait(lambda: fake.bot_messages())
    [reply] = fake.bot_messages()
    fake.delete_message(reply["id"])
    await settle(app, fake)
    edits = fake.requests("PATCH", rf"^/channels/{fake.CHANNEL_ID}/messages/")
    assert sum(c.status == 404 for c in edits) == 1  # one Unknown Message, then silence
    assert [c.status for c in edits].count(404) == 1 and edits[-1].status == 404
    assert fake.bot_messages() == []  # nothing re-posted, no error note


async def test_a_channel_without_send_permission_gets_the_answer_by_dm_with_the_reason(app, fake, fake_llm, discord_bot):
    fake.forbid(fake.CHANNEL_ID)
    fake_llm.enqueue(Script(text="The short answer.", tokens_per_second=40))
    await fake.send_message(f"{BOT} a question")
    await settle(app, fake)
    dm = fake.bot_messages(fake.DM_CHANNEL_ID)
    assert "missing the permission to post there" in dm[0]["content"]
    assert dm[-1]["content"] == "The short answer."
    assert fake.bot_messages(fake.CHANNEL_ID) == []


async def fake_wait(predicate, timeout: float = 10.0) -> None:
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)
