"""The router's decision table and its guarantees, as a user in a channel sees them."""
from __future__ import annotations

import asyncio

from bot.core.messages import Incoming
from bot.core.router import ANSWER, COMMAND, IGNORE, INGEST, OBSERVE, decide
from tests.fakes.openai_server import Script
from tests.harness import RecordingConversation


def msg(**kw) -> Incoming:
    base = dict(platform="test", tenant="T", channel="C", user="U", text="hi")
    base.update(kw)
    return Incoming(**base)


def test_decision_table():
    assert decide(msg(from_self=True, mentioned=True)).action == IGNORE
    assert decide(msg(from_bot=True, is_dm=True)).action == IGNORE
    assert decide(msg(command="summarize")).action == COMMAND
    from bot.core.messages import Attachment

    files = (Attachment(name="a.pdf", ref="F1"),)
    assert decide(msg(attachments=files, is_dm=True)).action == INGEST
    assert decide(msg(attachments=files, mentioned=True, text="add this to the knowledge base")).action == INGEST
    assert decide(msg(attachments=files, mentioned=True, text="what does this say?")).action == ANSWER
    assert decide(msg(mentioned=True)).action == ANSWER
    assert decide(msg(is_dm=True)).action == ANSWER
    assert decide(msg(in_bot_thread=True)).action == ANSWER
    assert decide(msg()).action == OBSERVE


async def test_mention_gets_a_streamed_answer_with_the_conversation_as_context(bot, fake_llm):
    await bot.send("the launch moved to Thursday")
    fake_llm.enqueue("It moved to Thursday.")
    replies = await bot.send("@aibot when is the launch?")
    assert replies == ["It moved to Thursday."]
    req = fake_llm.chat_requests[-1]
    assert req["stream"] is True
    contents = [m["content"] for m in req["messages"]]
    assert any("launch moved to Thursday" in c for c in contents)
    assert contents[-1].endswith("when is the launch?")


async def test_plain_channel_messages_get_no_reply(bot, fake_llm):
    assert await bot.send("just chatting with the team") == []
    assert fake_llm.chat_requests == []


async def test_own_and_other_bots_messages_are_ignored(bot, fake_llm):
    assert await bot.send("@aibot hi", from_self=True) == []
    assert await bot.send("@aibot hi", from_bot=True) == []
    assert fake_llm.chat_requests == []


async def test_duplicate_delivery_is_answered_once(bot, fake_llm):
    first = await bot.send("@aibot hello", dedupe_key="Ev123")
    again = await bot.send("@aibot hello", dedupe_key="Ev123")
    assert len(first) == 1 and again == []
    assert len(fake_llm.chat_requests) == 1


async def test_duplicate_is_recognised_by_another_replica(app, bot, fake_llm, settings):
    from bot.app import App
    from tests.harness import Harness

    await bot.send("@aibot hello", dedupe_key="Ev-shared")
    async with await App.open(settings) as replica:
        assert await Harness(replica).send("@aibot hello", dedupe_key="Ev-shared") == []
    assert len(fake_llm.chat_requests) == 1


async def test_empty_mention_gets_a_hint_not_a_model_call(bot, fake_llm):
    for text in ("@aibot", "@aibot    ", "@aibot \t "):
        replies = await bot.send(text)
        assert len(replies) == 1 and "Ask me something" in replies[0]
    assert fake_llm.chat_requests == []


async def test_oversized_message_is_refused_with_the_limit(bot, fake_llm):
    replies = await bot.send("@aibot " + "x" * 2_000_000)
    assert len(replies) == 1
    assert "too long" in replies[0] and "100,000" in replies[0]
    assert fake_llm.chat_requests == []


async def test_unknown_command_and_help(bot):
    [reply] = await bot.send("/frobnicate now")
    assert "/frobnicate" in reply and "/help" in reply
    [help_text] = await bot.send("/help")
    assert "/summarize" in help_text and "/help" in help_text
    assert bot.last.messages[0].ephemeral


async def test_a_crashing_handler_gets_an_apology_without_exception_text(app, bot):
    @app.router.command("boom", description="crash")
    async def boom(ctx, msg):
        raise RuntimeError("secret internal detail /etc/passwd")

    [reply] = await bot.send("/boom")
    assert "Sorry" in reply and "secret" not in reply and "RuntimeError" not in reply
    # and the bot keeps serving
    assert await bot.send("/help")


async def test_model_errors_become_one_clear_reply(bot, fake_llm):
    fake_llm.enqueue(*[Script(status=500)] * 3)
    [reply] = await bot.send("@aibot hello?")
    assert "language model service returned an error" in reply
    fake_llm.enqueue(Script(text="one two three four five", cut_after=2))
    [reply] = await bot.send("@aibot again?")
    assert reply.startswith("one two") and "cut short" in reply


async def test_answers_in_one_thread_are_serialised_in_order(app, fake_llm):
    order = []

    @app.router.command("slow", description="slow")
    async def slow(ctx, msg, word: str):
        order.append(("start", word))
        await asyncio.sleep(0.05)
        order.append(("end", word))
        return word

    conv = RecordingConversation()
    a = Incoming(platform="t", tenant="T", channel="C", user="U", text="one", command="slow", thread="th1")
    b = Incoming(platform="t", tenant="T", channel="C", user="U", text="two", command="slow", thread="th1")
    await asyncio.gather(app.router.dispatch(a, conv), app.router.dispatch(b, conv))
    assert order == [("start", "one"), ("end", "one"), ("start", "two"), ("end", "two")]


async def test_ai_stats_shows_the_usage_table_to_the_asker_only(bot, fake_llm):
    [empty] = await bot.send("/ai-stats")
    assert "No model calls" in empty
    await bot.send("@aibot hello")
    await bot.send("/summarize some words about the plan")
    [table] = await bot.send("/ai-stats")
    assert "streaming" in table and "api_wrapper" in table and "p95 ms" in table
    assert bot.last.messages[0].ephemeral
    [bad] = await bot.send("/ai-stats lots")
    assert "window like" in bad
