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
    def incomplete(cls, section: SlackSettings) -> str | None:
        given = [name for name, value in (("SLACK_APP_TOKEN", section.app_token),
                                          ("SLACK_SIGNING_SECRET", section.signing_secret)) if value is not None]
        if section.bot_token is None and given:
            return (f"{' and '.join(given)} is set but SLACK_BOT_TOKEN is not: Slack also needs the app's "
                    "Bot User OAuth Token, e.g. SLACK_BOT_TOKEN=xoxb-... (or unset "
                    f"{' and '.join(given)} to use the console)")
        return None

    @classmethod
    def create(cls, section: SlackSettings, settings):
        from adapters.slack.adapter import SlackAdapter

        return SlackAdapter(settings=section)


PLATFORM = Slack
