"""What each mention costs the bot, shown by what it asks of Slack, the model and the
database: nothing it can know without asking is asked for."""
from __future__ import annotations

from tests.slack_support import *  # noqa: F401,F403
from tests.slack_support import load

CHANNEL = "C123ABC456"


async def test_a_channel_mention_that_starts_its_thread_is_answered_without_reading_that_thread(slack, fake_llm):
    fake = slack.fake
    fake_llm.enqueue("Fresh thread, no history.")
    await slack.event(load("app_mention"))
    assert fake.bot_messages(CHANNEL)[-1].text == "Fresh thread, no history."
    assert fake.calls_to("conversations.replies") == []  # the thread is the mention itself: nothing to read
    assert fake.calls_to("conversations.history") == []
