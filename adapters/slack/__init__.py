"""Slack: slack-bolt's AsyncApp in Socket Mode or HTTP mode (`adapters.slack.adapter`).
The descriptor below is all the composition root sees; the SDK is imported only when
Slack runs."""
from __future__ import annotations

from adapters.slack.settings import SlackSettings
from bot.core.feature import Platform


class Slack(Platform):
    name = "slack"
    settings_model = SlackSettings

    @classmethod
    def configured(cls, section: SlackSettings) -> bool:
        return section.bot_token is not None or section.client_id is not None

    @classmethod
    def create(cls, section: SlackSettings, settings):
        from adapters.slack.adapter import SlackAdapter

        return SlackAdapter(settings=section)


PLATFORM = Slack
