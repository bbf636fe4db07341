"""Slack's settings section (SLACK_*)."""
from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr

from bot.core.settings import Section, env


class SlackSettings(Section):
    title: ClassVar[str] = "Slack"

    bot_token: SecretStr | None = env(
        "SLACK_BOT_TOKEN", None,
        description="the app's Bot User OAuth Token (`xoxb-...`): the bot runs in that one workspace "
        "(unset with `SLACK_CLIENT_ID`: many workspaces, installed through the OAuth flow)",
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
    intake: bool = env(
        "SLACK_INTAKE", True,
        description="acknowledge Slack events (HTTP mode and Socket Mode) on a thread of their own, so that a busy bot still "
        "answers Slack within its 3 s (off: on the main event loop, with the answers)",
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

    role_cache_seconds: float = env(
        "SLACK_ROLE_CACHE_SECONDS", 300.0, ge=0,
        description="how long a person's name and admin/owner role from `users.info` are remembered",
    )

    # --- distribution: many workspaces through Bolt's OAuth flow (when SLACK_BOT_TOKEN is unset)
    client_id: str | None = env(
        "SLACK_CLIENT_ID", None,
        description="OAuth distribution: the app's Client ID (Basic Information); with `SLACK_CLIENT_SECRET`, "
        "`SLACK_SIGNING_SECRET` and `SLACK_INSTALLATION_KEY` workspaces install the bot at `/slack/install`",
    )
    client_secret: SecretStr | None = env("SLACK_CLIENT_SECRET", None, description="OAuth distribution: the app's Client Secret")
    installation_key: SecretStr | None = env(
        "SLACK_INSTALLATION_KEY", None,
        description="OAuth distribution: Fernet key that encrypts the installations' tokens in the database; "
        "comma-separated keys rotate it (the first encrypts, all decrypt)",
    )
    scopes: str = env(
        "SLACK_SCOPES",
        "app_mentions:read,assistant:write,channels:history,groups:history,im:history,mpim:history,chat:write,"
        "commands,files:read,users:read,channels:read,groups:read,reactions:read,reactions:write",
        description="OAuth distribution: the bot scopes asked for at install (those of deploy/slack-manifest.yaml)",
    )
    redirect_uri: str | None = env(
        "SLACK_REDIRECT_URI", None,
        description="OAuth distribution: the public URL of `/slack/oauth_redirect` (as listed under the app's Redirect URLs)",
    )
    authorize_url: str = env(
        "SLACK_AUTHORIZE_URL", "https://slack.com/oauth/v2/authorize",
        description="OAuth distribution: where installers are sent to approve the app (GovSlack: `https://slack-gov.com/oauth/v2/authorize`)",
    )
    token_rotation_minutes: int = env(
        "SLACK_TOKEN_ROTATION_MINUTES", 120, ge=1,
        description="OAuth distribution with token rotation on: refresh a bot token this long before it expires",
    )

    @property
    def distributed(self) -> bool:
        """Many workspaces through the OAuth flow (no single SLACK_BOT_TOKEN)."""
        return self.bot_token is None and self.client_id is not None
