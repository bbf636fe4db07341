"""The agent loop's turns and limits, exactly as the user sees them: the text `run_agent`
yields (status lines, `↳` errors, blank lines, the answer, the limit note), the
`Outcome`, the ledger rows and the log line. The real openai SDK talks to the fake server;
tools are real (the calculator) or slow ones defined here."""
from __future__ import annotations

import asyncio
import logging
import re
import time

import pytest
from sqlalchemy import select

from bot.app import App
from bot.core.messages import Incoming
from bot.core.models import Usage
from patterns.agent import AgentLimits, Outcome, Run, run_agent
from patterns.agent.toolbox import calculate
from patterns.agent.tools import tool
from tests.fakes.openai_server import Script

NO_ANSWER = "I could not come up with an answer for that."
STEP_NOTE = "\n\n_(Stopped by the step limit (1 tool rounds, AGENT_MAX_STEPS).)_"
TIME_NOTE = "\n\n_(Stopped by the time limit (1 s, AGENT_MAX_SECONDS).)_"
SLOW_TEXT = "word " * 60  # streamed at 20 tokens/s: 3 s, longer than a 1 s limit


@tool(step="waiting")
async def slow(run) -> str:
    """Take far longer than any limit here."""
    await asyncio.sleep(30)
    return "finally"


def calc(expression: str) -> dict:
    return {"name": "calculate", "arguments": {"expression": expression}}


async def agent(app, tools=(calculate,), **limits) -> tuple[str, Outcome]:
    """One run straight through `run_agent`: everything it yielded, and how it ended."""
    msg = Incoming(platform="test", tenant="T1", channel="C1", user="U1", text="x")
    run = Run(services=app.services, conv=None, msg=msg)
    out = Outcome(run_id="run1")
    parts = [p async for p in run_agent(run, "the task", limits=AgentLimits(**limits), tools=tools, outcome=out)]
    return "".join(parts), out


async def ledger(app) -> list[Usage]:
    await app.services.ledger.flush()  # rows are written behind the answer
    async with app.services.db.session() as s:
        return list((await s.execute(select(Usage).order_by(Usage.id))).scalars())


async def ledger_extras(app) -> list[dict]:
    return [r.extra for r in await ledger(app)]


async def ledger_tokens(app) -> int:
    return sum(r.prompt_tokens + r.completion_tokens for r in await ledger(app))


async def test_an_answer_without_steps_is_just_the_answer(app, fake_llm):
    fake_llm.enqueue(Script(text="It is 4."))
    text, out = await agent(app)
    assert text == "It is 4."
    assert (out.steps, out.limit) == (1, None)


async def test_text_before_tool_calls_ends_its_line_and_the_answer_follows_a_blank_line(app, fake_llm):
    fake_llm.enqueue(Script(text="Let me work that out.", tool_calls=[calc("2+2")]), Script(text="It is 4."))
    text, out = await agent(app)
    assert text == "Let me work that out.\n▸ calculating 2+2\n\nIt is 4."
    assert (out.steps, out.limit) == (2, None)
    assert await ledger_extras(app) == [{"agent_run": "run1", "step": 1}, {"agent_run": "run1", "step": 2}]


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        (None, NO_ANSWER),
        (calc("1+1"), "▸ calculating 1+1\n" + NO_ANSWER),  # no blank line: nothing was streamed
    ],
    ids=["at-once", "after-a-step"],
)
async def test_a_turn_with_no_text_and_no_tool_calls_says_there_is_no_answer(app, fake_llm, first, expected):
    if first:
        fake_llm.enqueue(Script(tool_calls=[first]))
    fake_llm.enqueue(Script(text=""))
    text, out = await agent(app)
    assert text == expected and out.limit is None


async def test_a_turn_of_only_whitespace_counts_as_no_answer(app, fake_llm):
    fake_llm.enqueue(Script(text=" \n "))
    text, _ = await agent(app)
    assert text == " \n " + NO_ANSWER


async def test_the_time_limit_while_the_answer_streams_keeps_the_text_and_names_the_limit(app, fake_llm, caplog):
    fake_llm.enqueue(Script(tool_calls=[calc("1+2")]), Script(text=SLOW_TEXT, tokens_per_second=20))
    t0 = time.monotonic()
    with caplog.at_level(logging.INFO, logger="patterns.agent.loop"):
        text, out = await agent(app, max_seconds=1.0)
    assert time.monotonic() - t0 < 2.5
    assert re.fullmatch(r"▸ calculating 1\+2\n\nword( word)+" + re.escape(TIME_NOTE), text), text
    assert "I stopped" not in text  # what was streamed is the answer, no findings dump
    assert (out.steps, out.limit) == (2, "time")
    assert out.tokens == await ledger_tokens(app)  # the cut call is counted too
    assert [e.get("step") for e in await ledger_extras(app)] == [1, 2]
    assert re.search(r"agent run run1 \(test/T1\): 2 steps, \d+ tokens, \$\d+\.\d{4}, stopped by time", caplog.text)


async def test_the_time_limit_before_any_finding_says_so(app, fake_llm):
    fake_llm.enqueue(Script(hang=True))
    text, out = await agent(app, max_seconds=1.0)
    assert text == "\nI stopped before finding anything." + TIME_NOTE
    assert (out.steps, out.limit) == (1, "time")


async def test_a_slow_tool_gets_only_the_time_left_and_the_run_ends_with_the_findings(app, fake_llm):
    fake_llm.enqueue(Script(tool_calls=[calc("2*3"), {"name": "slow", "arguments": {}}]))
    t0 = time.monotonic()
    text, out = await agent(app, tools=(calculate, slow), max_seconds=1.0, tool_timeout=20.0)
    assert time.monotonic() - t0 < 2.5  # not the tool's 20 s
    pattern = (
        r"▸ calculating 2\*3\n▸ waiting\n  ↳ the tool took longer than [\d.]+ s and was stopped\n"
        r"\nI stopped before finishing\. The last results I had:\n• calculate: 6\n"
        r"• slow: error: the tool took longer than [\d.]+ s and was stopped" + re.escape(TIME_NOTE)
    )
    assert re.fullmatch(pattern, text), text
    assert out.limit == "time" and len(fake_llm.chat_requests) == 1  # no model call after the deadline


async def test_the_step_limit_wrap_up_answers_without_tools_and_names_the_limit(app, fake_llm, caplog):
    fake_llm.enqueue(Script(tool_calls=[calc("1+1")]), Script(text="From what I found, it is 2."))
    with caplog.at_level(logging.INFO, logger="patterns.agent.loop"):
        text, out = await agent(app, max_steps=1)
    assert text == "▸ calculating 1+1\n\nFrom what I found, it is 2." + STEP_NOTE
    wrap_up = fake_llm.chat_requests[-1]
    assert wrap_up["tool_choice"] == "none" and wrap_up["messages"][-1] == {
        "role": "user", "content": "Stop using tools now. Answer from what you found so far, and say briefly what is missing."}
    assert (out.steps, out.limit) == (1, "steps")
    assert out.tokens == await ledger_tokens(app)  # the wrap-up call is counted too
    assert await ledger_extras(app) == [
        {"agent_run": "run1", "step": 1},
        {"agent_run": "run1", "step": 2, "wrap_up": True, "limit": "steps"},
    ]
    assert re.search(r"agent run run1 \(test/T1\): 1 steps, \d+ tokens, \$\d+\.\d{4}, stopped by steps", caplog.text)


async def test_a_wrap_up_cut_by_the_time_limit_keeps_its_text_and_names_the_step_limit(app, fake_llm):
    fake_llm.enqueue(Script(tool_calls=[calc("1+1")]), Script(text=SLOW_TEXT, tokens_per_second=20))
    t0 = time.monotonic()
    text, out = await agent(app, max_steps=1, max_seconds=1.0)
    assert time.monotonic() - t0 < 2.5
    assert re.fullmatch(r"▸ calculating 1\+1\n\nword( word)+" + re.escape(STEP_NOTE), text), text
    assert out.limit == "steps"


FINDINGS_AT_STEP_LIMIT = "▸ calculating 1+1\n\nI stopped before finishing. The last results I had:\n• calculate: 2" + STEP_NOTE


async def test_an_empty_wrap_up_falls_back_to_the_findings(app, fake_llm):
    fake_llm.enqueue(Script(tool_calls=[calc("1+1")]), Script(text=""))
    text, out = await agent(app, max_steps=1)
    assert text == FINDINGS_AT_STEP_LIMIT
    assert len(fake_llm.chat_requests) == 2 and out.limit == "steps"


async def test_a_hanging_wrap_up_is_cut_at_the_runs_deadline_and_falls_back_to_the_findings(app, fake_llm):
    fake_llm.enqueue(Script(tool_calls=[calc("1+1")], ttft=1.5), Script(hang=True))
    t0 = time.monotonic()
    text, out = await agent(app, max_steps=1, max_seconds=2.0)
    assert time.monotonic() - t0 < 3.0  # the wrap-up gets what is left of the 2 s, not 2 s of its own
    assert text == FINDINGS_AT_STEP_LIMIT
    assert len(fake_llm.chat_requests) == 2 and out.limit == "steps"


async def test_the_step_limit_with_no_time_left_skips_the_wrap_up_call(app, fake_llm):
    fake_llm.enqueue(Script(tool_calls=[{"name": "slow", "arguments": {}}]))
    text, out = await agent(app, tools=(slow,), max_steps=1, max_seconds=1.0)
    pattern = (
        r"▸ waiting\n  ↳ the tool took longer than [\d.]+ s and was stopped\n"
        r"\nI stopped before finishing\. The last results I had:\n"
        r"• slow: error: the tool took longer than [\d.]+ s and was stopped" + re.escape(STEP_NOTE)
    )
    assert re.fullmatch(pattern, text), text
    assert len(fake_llm.chat_requests) == 1 and out.limit == "steps"


async def test_only_the_last_four_findings_are_shown(app, fake_llm):
    fake_llm.enqueue(Script(tool_calls=[calc(f"{n}*1") for n in range(1, 6)]), Script(text=""))
    text, _ = await agent(app, max_steps=1)
    assert text.endswith("The last results I had:\n• calculate: 2\n• calculate: 3\n• calculate: 4\n• calculate: 5" + STEP_NOTE)


async def test_a_cost_budget_of_zero_does_not_stop_the_run(settings, fake_llm):
    prices = '{"gpt-4o-mini": {"input": 10, "output": 40}}'  # the first call costs $0.014
    fake_llm.enqueue(Script(tool_calls=[calc("5*5")], prompt_tokens=1000, completion_tokens=100), Script(text="25."))
    async with await App.open(settings.model_copy(update={"prices": prices})) as app:
        text, out = await agent(app, max_cost=0)
    assert text == "▸ calculating 5*5\n\n25."
    assert out.limit is None and out.cost > 0
