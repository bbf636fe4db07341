"""Answer controls on Slack through the real slack-bolt + slack_sdk on the fake Slack:
Block Kit buttons under an answer (Stop while it is written, then Regenerate, 👍, 👎),
block_actions and view_submission payloads shaped like Slack's documented examples."""
from __future__ import annotations

import asyncio

from sqlalchemy import text

from tests.fakes.openai_server import Script
from tests.slack_support import *  # noqa: F401,F403
from tests.slack_support import load

CHANNEL = "C123ABC456"
MENTION_TS = "1515449522.000016"
ASKER = "U061F7AUR"
LONG = " ".join(f"word{i}" for i in range(400))


def buttons(blocks: list) -> dict[str, str]:
    """action_id -> value of every button in the blocks."""
    return {e["action_id"]: e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]}


def press(action: str, answer: str, *, user: str = ASKER) -> dict:
    payload = load("block_actions")
    payload["actions"][0].update(action_id=f"aibot_{action}", value=answer)
    payload["user"]["id"] = user
    return payload


async def rows(app, sql: str, **params):
    async with app.services.db.session() as s:
        return (await s.execute(text(sql), params)).all()


async def test_a_streamed_answer_ends_with_regenerate_and_feedback_buttons(slack, fake_llm):
    fake_llm.enqueue(Script(text="The river is **calm**.", tokens_per_second=20))
    await slack.event(load("app_mention"))
    stop = slack.fake.calls_to("chat.stopStream")[-1]
    found = buttons(stop.args["blocks"])
    assert set(found) == {"aibot_regenerate", "aibot_good", "aibot_bad"}
    msg = slack.fake.bot_messages(CHANNEL)[-1]
    assert msg.text == "The river is **calm**." and buttons(msg.blocks) == found


async def test_stop_cancels_the_model_call_and_keeps_what_was_written(slack, app, fake_llm):
    fake = slack.fake
    fake.fail("chat.startStream", "not_allowed")  # post + edits: the Stop button shows while it is written
    fake_llm.enqueue(Script(text=LONG, tokens_per_second=40))
    await slack.event(load("app_mention"), settle=False)
    await fake.wait_for(lambda: any("aibot_stop" in buttons(m.blocks) for m in fake.bot_messages(CHANNEL)))
    answer = buttons(fake.bot_messages(CHANNEL)[-1].blocks)["aibot_stop"]
    await asyncio.sleep(0.3)
    await slack.interactive(press("stop", answer))

    msg = fake.bot_messages(CHANNEL)[-1]
    assert msg.text.endswith("_(stopped)_")
    written = msg.text.removesuffix("_(stopped)_").strip()
    assert written and LONG.startswith(written) and len(written) < len(LONG) / 2
    assert set(buttons(msg.blocks)) == {"aibot_regenerate", "aibot_good", "aibot_bad"}
    assert await app.services.ledger.flush(timeout=10)  # usage rows are written behind the answer
    [(outcome, completion)] = await rows(app, "SELECT outcome, completion_tokens FROM usage WHERE extra->>'answer' = :a",
                                         a=answer)
    assert outcome == "cancelled" and completion < 400


async def test_only_the_asker_can_stop_and_a_finished_answer_cannot_be(slack, fake_llm):
    fake = slack.fake
    fake.fail("chat.startStream", "not_allowed")
    fake_llm.enqueue(Script(text=LONG, tokens_per_second=200))
    await slack.event(load("app_mention"), settle=False)
    await fake.wait_for(lambda: any("aibot_stop" in buttons(m.blocks) for m in fake.bot_messages(CHANNEL)))
    answer = buttons(fake.bot_messages(CHANNEL)[-1].blocks)["aibot_stop"]
    await slack.interactive(press("stop", answer, user="U0BOB"), settle=False)
    await slack.settle(timeout=30)
    assert fake.bot_messages(CHANNEL)[-1].text == LONG  # not stopped
    assert "Only the person who asked" in fake.ephemeral[0]["text"] and fake.ephemeral[0]["user"] == "U0BOB"
    await slack.interactive(press("stop", answer))
    assert "already finished" in fake.ephemeral[-1]["text"]


async def test_thumbs_up_and_down_are_stored_with_the_ledger_row_and_counted(slack, app, fake_llm):
    fake = slack.fake
    fake_llm.enqueue("Paris is the capital.")
    await slack.event(load("app_mention"))
    answer = buttons(fake.bot_messages(CHANNEL)[-1].blocks)["aibot_good"]

    await slack.interactive(press("good", answer))
    assert fake.ephemeral[-1]["text"] == "Thanks for the 👍." and fake.ephemeral[-1]["thread_ts"] == MENTION_TS
    await slack.interactive(press("bad", answer, user="U0BOB"))
    [modal] = fake.views  # the 👎 asks why, in a modal
    assert modal["callback_id"] == "aibot_feedback_reason"
    submission = load("view_submission")
    submission["user"]["id"] = "U0BOB"
    submission["view"]["private_metadata"] = modal["private_metadata"]
    await slack.interactive(submission)
    assert fake.ephemeral[-1]["text"] == "Thanks, that helps."

    usage = await rows(app, "SELECT id, model FROM usage WHERE extra->>'answer' = :a", a=answer)
    stored = await rows(app, "SELECT user_id, rating, reason, usage_id, pattern, model FROM answer_feedback ORDER BY rating")
    assert stored == [("U0BOB", -1, "It cited the wrong policy", usage[0][0], "streaming", usage[0][1]),
                      (ASKER, 1, None, usage[0][0], "streaming", usage[0][1])]
    await slack.command("/ai-stats")
    report = fake.responses[-1]["text"]
    assert "Feedback on answers" in report and "streaming" in report.split("Feedback on answers")[1]


async def test_regenerate_asks_the_model_again_in_the_same_thread(slack, fake_llm):
    fake = slack.fake
    fake_llm.enqueue("First try.", "Second try.")
    await slack.event(load("app_mention"))
    answer = buttons(fake.bot_messages(CHANNEL)[-1].blocks)["aibot_regenerate"]
    await slack.interactive(press("regenerate", answer))
    texts = [m.text for m in fake.bot_messages(CHANNEL)]
    assert texts == ["First try.", "Second try."]
    assert fake.bot_messages(CHANNEL)[-1].thread_ts == MENTION_TS
    assert fake_llm.chat_requests[0]["messages"][-1] == fake_llm.chat_requests[1]["messages"][-1]
    await slack.interactive(press("regenerate", "0123456789abcdef"))  # unknown (e.g. before a restart)
    assert "no longer have that question" in fake.ephemeral[-1]["text"]


def streaming(fake):
    return [m for m in fake.bot_messages(CHANNEL) if m.streaming]


async def test_a_native_stream_is_stopped_by_the_askers_stop_reaction(slack, app, fake_llm):
    """chat.startStream/appendStream take no buttons: while the answer streams, the bot's
    🛑 sits under it, and the asker adding it (reaction_added) stops the answer."""
    fake = slack.fake
    fake_llm.enqueue(Script(text=LONG, tokens_per_second=40))
    await slack.event(load("app_mention"), settle=False)
    await fake.wait_for(lambda: any(m.reactions.get("octagonal_sign") for m in streaming(fake)))
    [msg] = streaming(fake)
    assert msg.reactions == {"octagonal_sign": ["U0BOTUSER"]} and msg.blocks == []
    await asyncio.sleep(0.3)

    await slack.event(fake.reaction(CHANNEL, msg.ts, "octagonal_sign", "U0BOB"), settle=False)  # not the asker
    await slack.event(fake.reaction(CHANNEL, msg.ts, "thumbsup", ASKER), settle=False)  # not a stop
    await asyncio.sleep(0.3)
    assert msg.streaming
    await slack.event(fake.reaction(CHANNEL, msg.ts, "octagonal_sign", ASKER))
    assert not msg.streaming and msg.text.endswith("_(stopped)_")
    written = msg.text.removesuffix("_(stopped)_").strip()
    assert written and LONG.startswith(written) and len(written) < len(LONG) / 2
    assert set(buttons(msg.blocks)) == {"aibot_regenerate", "aibot_good", "aibot_bad"}  # stopStream's blocks
    assert msg.reactions["octagonal_sign"] == ["U0BOB", ASKER]  # the bot's hint is gone, theirs stay
    assert fake.ephemeral == []  # reactions are answered by what they do, never by a note
    answer = buttons(msg.blocks)["aibot_regenerate"]
    assert await app.services.ledger.flush(timeout=10)  # usage rows are written behind the answer
    [(outcome,)] = await rows(app, "SELECT outcome FROM usage WHERE extra->>'answer' = :a", a=answer)
    assert outcome == "cancelled"


async def test_a_finished_native_stream_loses_its_stop_reaction_and_ignores_late_ones(slack, fake_llm):
    fake = slack.fake
    fake_llm.enqueue(Script(text="A short answer.", tokens_per_second=20))
    await slack.event(load("app_mention"))
    [msg] = fake.bot_messages(CHANNEL)
    assert msg.text == "A short answer." and msg.reactions == {}  # added while it streamed, then taken away
    assert [c.method for c in fake.calls if c.method.startswith("reactions.")] == ["reactions.add", "reactions.remove"]
    await slack.event(fake.reaction(CHANNEL, msg.ts, "stop_button", ASKER))  # too late: nothing happens
    assert msg.text == "A short answer." and fake.ephemeral == []


async def test_without_the_reactions_scope_the_stream_still_answers(slack, fake_llm):
    fake = slack.fake
    fake.fail("reactions.add", "missing_scope", times=1)
    fake_llm.enqueue(Script(text="Still answered.", tokens_per_second=20))
    await slack.event(load("app_mention"))
    [msg] = fake.bot_messages(CHANNEL)
    assert msg.text == "Still answered." and set(buttons(msg.blocks)) == {"aibot_regenerate", "aibot_good", "aibot_bad"}
    assert not any(c.method == "reactions.remove" for c in fake.calls)
