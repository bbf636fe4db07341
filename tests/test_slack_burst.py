"""A burst of 50 answers streaming at once in one workspace: the update cadence adapts to
the load so every answer completes whole without a storm of 429s (Slack's per-workspace
tiers are enforced by the fake as token buckets)."""
from __future__ import annotations

import asyncio

import pytest

from tests.fakes.openai_server import Script
from tests.fakes.slack_server import FakeSlack
from tests.slack_support import *  # noqa: F401,F403
from tests.slack_support import load

N = 50
WORDS = " ".join(f"word{i}" for i in range(30))  # 30 tokens at 15/s: each answer streams ~2 s


@pytest.fixture
async def fake_slack():
    fake = await FakeSlack(per_minute={"chat.update": 50, "chat.appendStream": 100}).start()
    yield fake
    await fake.stop()


def mentions(n: int) -> list[dict]:
    out = []
    for i in range(n):
        ts = f"1516000000.{i:06d}"
        out.append(load("app_mention", event_id=f"EvBURST{i:03d}", ts=ts, channel=f"C0BURST{i % 5}",
                        text=f"<@U0BOTUSER> question {i}"))
    return out


async def burst(slack, fake_llm) -> list:
    fake_llm.enqueue(*[Script(text=f"{WORDS} end.", tokens_per_second=15) for _ in range(N)])
    for payload in mentions(N):
        await slack.event(payload, settle=False)
    await slack.settle(timeout=60)
    return [m for m in slack.fake.bot_messages() if m.thread_ts]


@pytest.mark.slow
async def test_fifty_concurrent_answers_with_edits_all_complete_without_a_429_storm(slack, fake_llm):
    slack.fake.fail("chat.startStream", "not_allowed")
    answers = await burst(slack, fake_llm)
    assert len(answers) == N
    assert all(m.text == f"{WORDS} end." for m in answers)
    assert slack.fake.rate_limited <= 2
    assert len(slack.fake.calls_to("chat.update")) <= 50


@pytest.mark.slow
async def test_fifty_concurrent_native_streams_all_complete_without_a_429_storm(slack, fake_llm):
    answers = await burst(slack, fake_llm)
    assert len(answers) == N
    assert all(m.text == f"{WORDS} end." and not m.streaming for m in answers)
    assert slack.fake.rate_limited <= 2
