"""Messages on Discord, end to end: the real discord.py client on the fake gateway + REST,
the composed bot behind it, the fake OpenAI server streaming the answers."""
from __future__ import annotations

import pytest

from tests.discord_env import BOT, connect, discord_bot, fake, settle  # noqa: F401 (fixtures)
from tests.fakes.discord_server import EDIT_LIMIT, EDIT_WINDOW, FakeDiscord
from tests.fakes.openai_server import Script


def edits_in_any_window(fake: FakeDiscord, channel: str) -> int:
    """The most message edits the fake accepted in one channel within any 5 s window."""
    times = [c.at for c in fake.requests("PATCH", rf"^/channels/{channel}/messages/") if c.status == 200]
    return max((sum(1 for t in times if s <= t < s + EDIT_WINDOW) for s in times), default=0)


async def test_the_gateway_handshake_is_the_real_protocol(app, fake, discord_bot):
    ident = fake.identify[0]
    assert ident["token"] == "test-token-not-real"
    intents = ident["intents"]
    assert intents & (1 << 0) and intents & (1 << 9) and intents & (1 << 12) and intents & (1 << 15)
    assert fake.heartbeats >= 1  # discord.py beats right after HELLO; the fake ACKs
    names = {c["name"] for c in fake.commands}
    assert {"summarize", "ask", "kb", "digest", "agent", "ai-stats"} <= names
    kb = next(c for c in fake.commands if c["name"] == "kb")
    assert {o["name"] for o in kb["options"]} == {"list", "search", "remove", "add"}


@pytest.mark.slow
async def test_mention_is_answered_as_a_streamed_reply_within_the_edit_rate_limit(app, fake, fake_llm, discord_bot):
    answer = " ".join(f"word{i}" for i in range(120))
    fake_llm.enqueue(Script(text=answer, tokens_per_second=30))
    asked = await fake.send_message(f"{BOT} tell me a long story")
    await settle(app, fake)

    [reply] = fake.bot_messages()
    assert reply["content"] == answer
    assert reply["message_reference"]["message_id"] == asked["id"]
    assert len(fake.versions[reply["id"]]) >= 3  # posted early, then grew by edits
    assert fake.overruns == 0
    assert edits_in_any_window(fake, fake.CHANNEL_ID) <= EDIT_LIMIT
    question = fake_llm.chat_requests[-1]["messages"][-1]["content"]
    assert question.endswith("tell me a long story") and "<@" not in question
    assert fake.requests("POST", rf"^/channels/{fake.CHANNEL_ID}/typing$")  # typing while the model is silent


async def test_everyone_in_the_model_output_pings_nobody(app, fake, fake_llm, discord_bot):
    fake_llm.enqueue("Sure: @everyone @here <@&123> look at this")
    await fake.send_message(f"{BOT} say hi to everyone")
    await settle(app, fake)
    writes = fake.requests("POST", rf"^/channels/{fake.CHANNEL_ID}/messages$") + fake.requests("PATCH", r"/messages/")
    assert writes
    for call in writes:
        assert call.body["allowed_mentions"]["parse"] == []
        assert not call.body["allowed_mentions"].get("replied_user")


async def test_own_and_other_bots_messages_are_ignored(app, fake, fake_llm, discord_bot):
    await fake.send_message(f"{BOT} I am the bot itself", author=fake.user(fake.BOT_ID))
    await fake.send_message(f"{BOT} beep", author=fake.user(fake.OTHER_BOT_ID, name="otherbot", bot=True))
    await settle(app, fake)
    assert fake.bot_messages() == [m for m in fake.bot_messages() if m["content"] == f"{BOT} I am the bot itself"]
    assert fake_llm.chat_requests == []


async def test_plain_channel_chatter_is_not_answered(app, fake, fake_llm, discord_bot):
    await fake.send_message("just people talking")
    await settle(app, fake)
    assert fake.bot_messages() == [] and fake_llm.chat_requests == []


async def test_dm_is_answered_in_place_with_recent_dm_history(app, fake, fake_llm, discord_bot):
    fake_llm.enqueue("Blue.", "You said blue.")
    await fake.send_message("my favourite colour is blue", dm=True)
    await settle(app, fake)
    await fake.send_message("what is my favourite colour?", dm=True)
    await settle(app, fake)
    replies = fake.bot_messages(fake.DM_CHANNEL_ID)
    assert [r["content"] for r in replies] == ["Blue.", "You said blue."]
    assert all("message_reference" not in r for r in replies)
    sent = " ".join(m["content"] for m in fake_llm.chat_requests[-1]["messages"])
    assert "my favourite colour is blue" in sent


async def test_reply_to_the_bot_continues_with_the_reply_chain_as_context(app, fake, fake_llm, discord_bot):
    fake_llm.enqueue("The launch is on Friday.", "Yes, Friday at 10:00.")
    await fake.send_message("unrelated chatter about lunch")
    await fake.send_message(f"{BOT} when is the launch?")
    await settle(app, fake)
    [first] = fake.bot_messages()
    await fake.send_message("are you sure?", reply_to=first["id"])  # no mention: a reply to the bot
    await settle(app, fake)
    assert [m["content"] for m in fake.bot_messages()] == ["The launch is on Friday.", "Yes, Friday at 10:00."]
    context = [m["content"] for m in fake_llm.chat_requests[-1]["messages"]]
    assert any("when is the launch?" in c for c in context)
    assert "The launch is on Friday." in context
    assert not any("lunch" in c for c in context)  # the chain, not the channel


async def test_message_in_a_thread_the_bot_started_continues_without_a_mention(app, fake, fake_llm):
    thread = fake.add_thread(owner=fake.BOT_ID)
    adapter = await connect(app, fake)
    try:
        fake_llm.enqueue("Threaded answer.")
        await fake.send_message("and what about tomorrow?", channel=thread)
        await settle(app, fake)
        assert [m["content"] for m in fake.bot_messages(thread)] == ["Threaded answer."]
    finally:
        await adapter.stop()


async def test_long_answer_continues_in_a_new_message_and_keeps_code_blocks_whole(app, fake, fake_llm, discord_bot):
    code = "\n".join(f"print('line {i:03d}')" for i in range(150))  # ~2,700 chars of code
    answer = f"Here is the script:\n\n```python\n{code}\n```\n\nRun it with python."
    fake_llm.enqueue(answer)
    await fake.send_message(f"{BOT} write me a long script")
    await settle(app, fake)
    parts = [m["content"] for m in fake.bot_messages()]
    assert len(parts) >= 2
    assert all(len(p) <= 2_000 for p in parts)
    assert all(p.count("```") % 2 == 0 for p in parts)  # every part's code block is closed
    assert parts[1].startswith("```python")  # and reopened in the continuation
    rejoined = "".join(parts)
    for i in range(150):
        assert f"print('line {i:03d}')" in rejoined


async def test_rate_limited_edit_is_delayed_not_dropped(app, fake, fake_llm, discord_bot):
    answer = " ".join(f"token{i}" for i in range(60))
    fake_llm.enqueue(Script(text=answer, tokens_per_second=40))
    fake.fail_next("PATCH", r"^/channels/\d+/messages/\d+$", retry_after=0.5, times=1)
    await fake.send_message(f"{BOT} count for me")
    await settle(app, fake)
    [reply] = fake.bot_messages()
    assert reply["content"] == answer
    limited = [c for c in fake.calls if c.status == 429]
    assert limited  # the 429 happened, and discord.py retried after it
    assert any(c.at >= limited[0].at + 0.45 and c.method == "PATCH" and c.status == 200 for c in fake.calls)


async def test_model_failure_midway_ends_the_message_with_a_note(app, fake, fake_llm, discord_bot):
    fake_llm.enqueue(Script(text="The first part is fine and then", cut_after=3), Script(text="x", cut_after=0), Script(text="x", cut_after=0))
    await fake.send_message(f"{BOT} explain something")
    await settle(app, fake)
    [reply] = fake.bot_messages()
    assert "Answer cut short" in reply["content"]
    assert "Traceback" not in reply["content"] and "Error" not in reply["content"]


async def test_scheduled_post_reaches_a_channel_through_the_registered_opener(app, fake, discord_bot):
    conv = app.services.channels.open("discord", tenant=fake.GUILD_ID, channel=fake.OTHER_CHANNEL_ID)
    mid = await conv.post("Daily digest: nothing happened.")
    assert fake.messages[mid]["channel_id"] == fake.OTHER_CHANNEL_ID
    assert fake.messages[mid]["content"] == "Daily digest: nothing happened."


async def test_two_answers_streaming_in_one_channel_share_the_edit_budget(app, fake, fake_llm, discord_bot):
    a = " ".join(f"alpha{i}" for i in range(100))
    b = " ".join(f"beta{i}" for i in range(100))
    earlier = [fake._bot_message(fake.CHANNEL_ID, {"content": f"earlier answer {n}"}) for n in (1, 2)]
    fake_llm.enqueue(Script(text=a, tokens_per_second=40), Script(text=b, tokens_per_second=40))
    # two follow-ups to two different answers: two conversations, streamed at the same time
    await fake.send_message("tell me more", reply_to=earlier[0]["id"])
    await fake.send_message("and you, go on", reply_to=earlier[1]["id"])
    await settle(app, fake)
    new = [m for m in fake.bot_messages() if m not in earlier and not m["content"].startswith("earlier")]
    assert sorted(m["content"] for m in new) == sorted([a, b])
    edits = {m["id"]: [c.at for c in fake.requests("PATCH", rf"/messages/{m['id']}$")] for m in new}
    first, second = edits.values()
    assert min(second) < max(first) and min(first) < max(second)  # they really overlapped
    assert fake.overruns == 0
    assert edits_in_any_window(fake, fake.CHANNEL_ID) <= EDIT_LIMIT


async def test_a_message_delivered_twice_is_answered_once(app, fake, fake_llm, discord_bot):
    fake_llm.enqueue("Once.", "Twice?!")
    m = await fake.send_message(f"{BOT} hello")
    await fake.dispatch("MESSAGE_CREATE", m, guild_id=fake.GUILD_ID)  # the gateway redelivers it
    await settle(app, fake)
    assert [r["content"] for r in fake.bot_messages()] == ["Once."]
