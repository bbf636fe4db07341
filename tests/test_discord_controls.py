"""Answer controls on Discord through the real discord.py on the fake gateway + REST:
buttons (message components) under an answer, clicks as MESSAGE_COMPONENT interactions,
the 👎 reason as a modal and its MODAL_SUBMIT."""
from __future__ import annotations

import asyncio

from sqlalchemy import text

from tests.discord_env import BOT, connect, discord_bot, fake, settle  # noqa: F401 (fixtures)
from tests.fakes.openai_server import Script

LONG = " ".join(f"word{i}" for i in range(400))


def custom_ids(message: dict) -> list[str]:
    return [c["custom_id"] for row in message.get("components") or [] for c in row["components"]]


def answer_of(message: dict) -> str:
    return custom_ids(message)[0].rsplit(":", 1)[1]


async def test_an_answer_gets_regenerate_and_feedback_buttons(app, fake, fake_llm, discord_bot):
    fake_llm.enqueue("Paris.")
    await fake.send_message(f"{BOT} capital of France?")
    await settle(app, fake)
    [reply] = fake.bot_messages()
    answer = answer_of(reply)
    assert reply["content"] == "Paris."
    assert custom_ids(reply) == [f"aibot:regenerate:{answer}", f"aibot:good:{answer}", f"aibot:bad:{answer}"]


async def test_a_streamed_slash_command_answer_gets_the_buttons_on_its_response(app, fake, fake_llm):
    @app.router.command("shout", description="Stream an answer")
    async def shout(ctx, msg, text: str):
        """text: what to say"""
        async def words():
            for w in ("Done:", " 42."):
                yield w
        return words()

    adapter = await connect(app, fake)  # the tree is built from the commands declared by then
    try:
        i = await fake.send_command("shout", [{"name": "text", "type": 3, "value": "six times seven"}])
        await settle(app, fake)
    finally:
        await adapter.stop()
    original = fake.messages[fake._originals[i["token"]]]
    assert original["content"] == "Done: 42."
    assert [c.split(":")[1] for c in custom_ids(original)] == ["regenerate", "good", "bad"]


async def test_stop_closes_the_message_with_what_was_written(app, fake, fake_llm, discord_bot):
    fake_llm.enqueue(Script(text=LONG, tokens_per_second=40))
    await fake.send_message(f"{BOT} tell me everything")
    for _ in range(500):
        if fake.bot_messages() and custom_ids(fake.bot_messages()[0]):
            break
        await asyncio.sleep(0.01)
    reply = fake.bot_messages()[0]
    assert custom_ids(reply)[0].startswith("aibot:stop:")
    await asyncio.sleep(0.3)
    await fake.press_button(reply, custom_ids(reply)[0])
    await settle(app, fake)
    reply = fake.messages[reply["id"]]
    assert reply["content"].endswith("_(stopped)_") and len(reply["content"]) < len(LONG) / 2
    assert [c.startswith(("aibot:regenerate", "aibot:good", "aibot:bad")) for c in custom_ids(reply)] == [True] * 3
    assert fake.callbacks[-1]["type"] == 6  # the click was acknowledged as a deferred update


async def test_thumbs_down_opens_a_modal_and_stores_the_reason(app, fake, fake_llm, discord_bot):
    fake_llm.enqueue("Berlin.")
    await fake.send_message(f"{BOT} capital of France?")
    await settle(app, fake)
    [reply] = fake.bot_messages()
    answer = answer_of(reply)
    await fake.press_button(reply, f"aibot:bad:{answer}")
    await settle(app, fake)
    [modal] = fake.modals
    field = modal["components"][0]["components"][0]
    await fake.submit_modal(modal, {field["custom_id"]: "Wrong city"}, message=reply)
    await settle(app, fake)
    async with app.services.db.session() as s:
        rows = (await s.execute(text("SELECT f.rating, f.reason, f.pattern, u.extra->>'answer' FROM answer_feedback f "
                                     "JOIN usage u ON u.id = f.usage_id"))).all()
    assert rows == [(-1, "Wrong city", "streaming", answer)]
    notes = [m for m in fake.bot_messages() if m.get("flags", 0) & 64]
    assert notes and notes[-1]["content"] == "Thanks, that helps."


async def test_regenerate_answers_again_as_a_reply_to_the_question(app, fake, fake_llm, discord_bot):
    fake_llm.enqueue("Berlin.", "Paris.")
    asked = await fake.send_message(f"{BOT} capital of France?")
    await settle(app, fake)
    first = fake.bot_messages()[0]
    await fake.press_button(first, f"aibot:regenerate:{answer_of(first)}")
    await settle(app, fake)
    replies = [m for m in fake.bot_messages() if not m.get("flags", 0) & 64]
    assert [m["content"] for m in replies] == ["Berlin.", "Paris."]
    assert replies[1]["message_reference"]["message_id"] == asked["id"]


async def test_the_askers_stop_reaction_stops_the_answer_like_the_button(app, fake, fake_llm, discord_bot):
    """Parity with Slack's native streams: a 🛑 reaction (MESSAGE_REACTION_ADD, which the
    bot receives because it asks for the reactions intent) stops the answer."""
    assert fake.identify[-1]["intents"] & fake.GUILD_MESSAGE_REACTIONS
    fake_llm.enqueue(Script(text=LONG, tokens_per_second=40))
    await fake.send_message(f"{BOT} tell me everything")
    for _ in range(500):
        if fake.bot_messages() and custom_ids(fake.bot_messages()[0]):
            break
        await asyncio.sleep(0.01)
    reply = fake.bot_messages()[0]
    await asyncio.sleep(0.3)
    await fake.react(reply, "🛑", user="1100000000000000099")  # someone else: nothing
    await fake.react(reply, "👍")  # not a stop
    await asyncio.sleep(0.3)
    assert not fake.messages[reply["id"]]["content"].endswith("_(stopped)_")
    await fake.react(reply, "🛑")
    await settle(app, fake)
    reply = fake.messages[reply["id"]]
    assert reply["content"].endswith("_(stopped)_") and len(reply["content"]) < len(LONG) / 2
    assert [c.split(":")[1] for c in custom_ids(reply)] == ["regenerate", "good", "bad"]
    assert not [m for m in fake.bot_messages() if m.get("flags", 0) & 64]  # no notes for reactions


async def test_regenerate_after_a_restart_replies_to_the_question_again(app, fake, fake_llm, discord_bot):
    """The process that wrote the answer is gone (its memory with it): the question comes
    from the database and the new answer is a reply to it."""
    from bot.core.answers import Answers

    fake_llm.enqueue("Berlin.", "Paris.")
    asked = await fake.send_message(f"{BOT} capital of France?")
    await settle(app, fake)
    first = fake.bot_messages()[0]
    await app.services.answers.settle()
    app.services.answers = Answers(store=app.services.answers.store)  # a fresh process's memory
    await fake.press_button(first, f"aibot:regenerate:{answer_of(first)}")
    await settle(app, fake)
    replies = [m for m in fake.bot_messages() if not m.get("flags", 0) & 64]
    assert [m["content"] for m in replies] == ["Berlin.", "Paris."]
    assert replies[1]["message_reference"]["message_id"] == asked["id"]
