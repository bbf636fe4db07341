"""`aibot run` composes Slack when SLACK_BOT_TOKEN is set, alongside other adapters, and
scheduled posts can reach a Slack channel through the channels registry."""
from __future__ import annotations

import asyncio

from pydantic import SecretStr

from adapters.slack.adapter import SlackAdapter
from tests.slack_support import *  # noqa: F401,F403


async def test_slack_is_built_when_its_token_is_set(app, slack_settings):
    assert [a.name for a in app.adapters()] == ["console"]  # no token: the console
    app.settings = app.settings.with_sections(slack_settings)
    adapters = app.adapters()
    assert any(isinstance(a, SlackAdapter) for a in adapters)
    assert all(a.name != "console" for a in adapters)


async def test_scheduled_post_reaches_a_slack_channel(app, fake_slack, slack_settings):
    app.settings = app.settings.with_sections(slack_settings)
    adapter = SlackAdapter(settings=slack_settings)
    serving = asyncio.create_task(app.serve([adapter]))
    await fake_slack.wait_connected()
    await fake_slack.wait_for(lambda: "slack" in app.services.channels.platforms)
    conv = app.services.channels.open("slack", tenant="T0FAKETEAM", channel="C0DIGEST")
    await conv.post("**Daily digest**: all quiet.")
    await adapter.stop()
    await serving
    post = fake_slack.calls_to("chat.postMessage")[-1]
    assert post.args["channel"] == "C0DIGEST" and post.args["text"] == "*Daily digest*: all quiet."


async def test_slack_without_app_token_or_signing_secret_says_what_to_set(slack_settings):
    import pytest

    from bot.core.errors import ConfigError

    bad = slack_settings.model_copy(update=dict(app_token=None, signing_secret=None))
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN"):
        SlackAdapter(settings=bad)
    assert isinstance(slack_settings.bot_token, SecretStr)


async def test_a_rejected_bot_token_is_a_configuration_error(fake_slack, slack_settings):
    import pytest

    from bot.core.errors import ConfigError

    bad = slack_settings.model_copy(update=dict(bot_token=SecretStr("xoxb-wrong")))
    with pytest.raises(ConfigError, match="invalid_auth"):
        await SlackAdapter(settings=bad).start(lambda msg, conv: None)
