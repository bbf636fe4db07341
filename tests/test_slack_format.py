"""What a Slack user sees for the Markdown the patterns write (mrkdwn at the edge), and
how Slack payloads become the core's messages."""
from __future__ import annotations

from adapters.slack.mrkdwn import to_mrkdwn
from adapters.slack.normalize import Identity, from_command, from_event
from tests.slack_support import load

ME = Identity(user_id="U0BOTUSER", bot_id="B0BOTID", team_id="T0FAKETEAM")


def test_markdown_becomes_mrkdwn():
    assert to_mrkdwn("**Summary** of *this* ~~old~~ thing") == "*Summary* of _this_ ~old~ thing"
    assert to_mrkdwn("see [the docs](https://example.com/a?b=1)") == "see <https://example.com/a?b=1|the docs>"
    assert to_mrkdwn("## Decisions\n- ship Friday\n- Bob: notes") == "*Decisions*\n• ship Friday\n• Bob: notes"
    assert to_mrkdwn("a < b & c > d") == "a &lt; b &amp; c &gt; d"  # Slack's control characters


def test_code_keeps_its_content():
    md = "Use `**kwargs` like this:\n```python\nf(**opts)  # a < b\n```"
    assert to_mrkdwn(md) == "Use `**kwargs` like this:\n```\nf(**opts)  # a &lt; b\n```"


def test_mention_event_becomes_an_incoming_answered_in_its_thread():
    msg = from_event(load("app_mention"), ME, in_bot_thread=lambda c, t: False)
    assert msg.platform == "slack" and msg.tenant == "T0FAKETEAM" and msg.channel == "C123ABC456"
    assert msg.text == "is it everything a river should be?" and msg.mentioned
    assert msg.thread == "1515449522.000016" and msg.dedupe_key == "slack:Ev123ABC456"
    assert not msg.from_self and not msg.from_bot


def test_channel_message_mentioning_the_bot_is_left_to_app_mention():
    payload = load("message_thread_reply", text="<@U0BOTUSER> hi")
    assert from_event(payload, ME, in_bot_thread=lambda c, t: True) is None


def test_edits_and_joins_are_not_messages():
    for subtype in ("message_changed", "message_deleted", "channel_join"):
        assert from_event(load("message_im", subtype=subtype), ME, in_bot_thread=lambda c, t: False) is None


def test_slash_command_payload_becomes_a_command():
    msg = from_command({**load("slash_command"), "command": "/Summarize", "text": " 4h "})
    assert msg.command == "summarize" and msg.text == "4h" and msg.user == "U2147483697"
    assert msg.dedupe_key.startswith("slack:cmd:")
