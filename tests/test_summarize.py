"""`/summarize`: the API-wrapper pattern, including inputs longer than the context."""
from __future__ import annotations

from datetime import timedelta

import pytest

from bot.core import tokens
from bot.core.messages import CallInfo, HistoryItem, Incoming, utcnow
from bot.core.summarizer import summarize
from bot.core.timewindow import parse_window
from patterns.summarize import asks_for_thread_summary
from tests.harness import RecordingConversation

CALL = CallInfo("api_wrapper", platform="test")


async def test_summarize_text_makes_one_call_and_replies(bot, fake_llm):
    fake_llm.enqueue("Short summary.")
    [reply] = await bot.send("/summarize The board approved the budget. Hiring starts in May.")
    assert reply == "Short summary."
    [req] = fake_llm.chat_requests
    assert "budget" in req["messages"][-1]["content"]
    assert "same language" in req["messages"][0]["content"]
    assert req["model"] == "gpt-4o-mini" and not req.get("stream")


async def test_long_text_is_split_by_tokens_and_reduced(app, fake_llm):
    paragraphs = [f"Paragraph {i}: " + ("the quarterly figures improved " * 40) for i in range(80)]
    text = "\n\n".join(paragraphs)
    budget = 2_000
    assert tokens.count(text) > 5 * budget
    summary = await summarize(app.services.llm, text, call=CALL, budget_tokens=budget)
    reqs = fake_llm.chat_requests
    assert len(reqs) >= 6  # several map calls + at least one reduce
    for r in reqs:
        sent = sum(tokens.count(m["content"]) for m in r["messages"])
        assert sent <= budget, f"a call exceeded the budget: {sent} tokens"
    assert any("part 1 of" in r["messages"][0]["content"].lower() for r in reqs)
    assert "merge them" in reqs[-1]["messages"][0]["content"].lower()
    assert summary.startswith("Summary:")


async def test_same_text_twice_costs_one_model_call(bot, fake_llm):
    text = "/summarize Exactly the same paragraph about the roadmap and its three milestones."
    first = await bot.send(text)
    second = await bot.send(text)
    assert second[0].startswith(first[0]) and "cached answer" in second[0]  # the repeat says it is cached
    assert len(fake_llm.chat_requests) == 1


async def test_summarize_alone_summarizes_the_recent_conversation(bot, fake_llm):
    await bot.send("alice: shall we ship on Friday?")
    await bot.send("bob: yes, Friday, and Carol writes the notes")
    fake_llm.enqueue("Topics: shipping. Decisions: Friday. Action items: Carol writes the notes.")
    [reply] = await bot.send("/summarize")
    assert "Carol writes the notes" in reply and "2 messages" in reply
    transcript = fake_llm.chat_requests[-1]["messages"][-1]["content"]
    assert "ship on Friday" in transcript and "Carol writes the notes" in transcript
    assert "Action items" in fake_llm.chat_requests[-1]["messages"][0]["content"]


async def test_summarize_window_reads_only_that_window(bot, fake_llm):
    now = utcnow()
    history = [
        HistoryItem(user="old", text="ancient news from yesterday", ts=now - timedelta(hours=20)),
        HistoryItem(user="new", text="fresh news from this morning", ts=now - timedelta(hours=1)),
    ]
    conv = RecordingConversation(history=history)
    [reply] = await bot.send("/summarize 4h", conv=conv)
    body = fake_llm.chat_requests[-1]["messages"][-1]["content"]
    assert "fresh news" in body and "ancient news" not in body
    assert "last 4 hours" in reply


async def test_summarize_with_nothing_to_read_says_so(bot, fake_llm):
    [reply] = await bot.send("/summarize 2h", conv=RecordingConversation())
    assert "nothing to summarize" in reply
    assert fake_llm.chat_requests == []


def test_parse_window():
    assert parse_window("4h") == timedelta(hours=4)
    assert parse_window("30m") == timedelta(minutes=30)
    assert parse_window("2 days") == timedelta(days=2)
    assert parse_window("the 4h plan") is None


@pytest.mark.parametrize(
    ("text", "thread", "expected"),
    [
        ("summarize", "100.1", True),
        ("Summarise this thread please", "100.1", True),
        ("can you recap the discussion?", "100.1", True),
        ("tl;dr", "100.1", True),
        ("summarize", None, False),  # not in a thread
        ("summarize", "200.2", False),  # the mention starts the thread (Slack: thread == its own ts)
        ("how do I summarize a PDF?", "100.1", False),
        ("summarize the sales numbers for Q3", "100.1", False),
    ],
)
def test_only_a_plain_summary_request_in_a_thread_is_a_thread_summary(text, thread, expected):
    msg = Incoming(platform="slack", tenant="T", channel="C", user="U", text=text, id="200.2", thread=thread,
                   mentioned=True)
    assert asks_for_thread_summary(msg) is expected
