"""Slack's settings section (SLACK_*)."""
from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr

from bot.core.settings import Section, env


class SlackSettings(Section):
    title: ClassVar[str] = "Slack"

    bot_token: SecretStr | None = env(
        "SLACK_BOT_TOKEN", None, description="the app's Bot User OAuth Token (`xoxb-...`); set: the bot runs on Slack"
    )
    app_token: SecretStr | None = env(
        "SLACK_APP_TOKEN", None, description="an app-level token (`xapp-...`): Socket Mode, no public URL needed"
    )
    signing_secret: SecretStr | None = env(
        "SLACK_SIGNING_SECRET", None,
        description="HTTP mode (when `SLACK_APP_TOKEN` is unset): the secret Slack signs requests with",
    )
    api_url: str | None = env(
        "SLACK_API_URL", None, description="base URL of the Slack Web API (unset: `https://slack.com/api/`)"
    )
    http_path: str = env(
        "SLACK_HTTP_PATH", "/slack/events",
        description="Slack HTTP mode: the one path for events, slash commands and interactivity",
    )
    http_port: int = env(
        "SLACK_HTTP_PORT", 3000, ge=0, le=65535,
        description="Slack HTTP mode: port of the HTTP server when `AIBOT_HTTP_PORT` is unset",
    )
    max_file_mb: float = env(
        "SLACK_MAX_FILE_MB", 20.0, gt=0,
        description="largest file the bot downloads from Slack (larger ones are refused with the limit)",
    )
    update_interval: float = env(
        "SLACK_UPDATE_INTERVAL", 1.0, ge=0,
        description="shortest time between progressive updates of one answer (it grows with the answers in flight)",
    )
    max_retries: int = env(
        "SLACK_MAX_RETRIES", 3, ge=0, le=10,
        description="retries of a Slack Web API call answered 429, each after its `Retry-After`",
    )
    assistant_prompts: str = env(
        "SLACK_ASSISTANT_PROMPTS",
        "Summarize this channel => Summarize this channel; "
        "Ask the knowledge base => What is in the knowledge base?; "
        "What's new today => What's new in this channel today?",
        description="suggested prompts of the assistant panel, `title => message` separated by `;` "
        "(the three defaults summarize the channel being viewed, list the knowledge base, summarize its last 24 h)",
    )
    assistant_greeting: str = env(
        "SLACK_ASSISTANT_GREETING", "Hi! Ask me anything, or pick a suggestion below.",
        description="the first message in a new assistant-panel thread",
    )
