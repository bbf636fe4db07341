"""The Slack app manifest in the repo asks for what the adapter uses: exactly the
commands the bot declares, the message events it handles, the scopes those need,
Socket Mode."""
from __future__ import annotations

from pathlib import Path

import yaml

from adapters.slack.normalize import SUMMARIZE_SHORTCUT
from bot.cli.reference import declared

MANIFEST = Path(__file__).resolve().parent.parent / "deploy" / "slack-manifest.yaml"


def test_manifest_declares_commands_events_scopes_and_socket_mode():
    m = yaml.safe_load(MANIFEST.read_text())
    commands = {c["command"] for c in m["features"]["slash_commands"]}
    assert {"/summarize", "/ask", "/kb", "/digest", "/agent", "/ai-stats", "/help"} <= commands
    events = set(m["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_mention", "message.im", "message.channels"} <= events
    scopes = set(m["oauth_config"]["scopes"]["bot"])
    assert {"app_mentions:read", "chat:write", "commands", "files:read", "im:history", "channels:history",
            "assistant:write"} <= scopes
    assert m["settings"]["socket_mode_enabled"] is True
    shortcuts = {(s["type"], s["callback_id"]) for s in m["features"]["shortcuts"]}
    assert ("message", SUMMARIZE_SHORTCUT) in shortcuts  # the callback id the adapter listens for


def test_manifest_slash_commands_are_the_declared_commands():
    m = yaml.safe_load(MANIFEST.read_text())
    in_manifest = {c["command"]: (c["description"], c.get("usage_hint", "")) for c in m["features"]["slash_commands"]}
    commands = declared()
    expected = {
        f"/{c.name}": (c.description, commands.usage(c.name).removeprefix(f"/{c.name}").strip())
        for c in commands.top_level()
    }
    assert in_manifest == expected
    assert all(len(description) <= 100 for description, _ in in_manifest.values())
    assert "digest-run" not in {name.strip("/") for name in in_manifest}  # internal: never a slash command


def test_manifest_enables_the_assistant_panel_with_the_default_prompts():
    from adapters.slack.assistant import parse_prompts
    from adapters.slack.settings import SlackSettings

    m = yaml.safe_load(MANIFEST.read_text())
    events = set(m["settings"]["event_subscriptions"]["bot_events"])
    assert {"assistant_thread_started", "assistant_thread_context_changed", "message.im"} <= events
    view = m["features"]["assistant_view"]
    default = SlackSettings.model_fields["assistant_prompts"].default
    assert view["suggested_prompts"] == parse_prompts(default) and len(view["assistant_description"]) <= 200
    assert {"assistant:write", "channels:read"} <= set(m["oauth_config"]["scopes"]["bot"])
    assert m["settings"]["interactivity"]["is_enabled"] is True  # the answer buttons and the 👎 modal


def test_stop_by_reaction_is_subscribed_and_oauth_installs_ask_for_the_manifests_scopes():
    from adapters.slack.settings import SlackSettings

    m = yaml.safe_load(MANIFEST.read_text())
    assert "reaction_added" in m["settings"]["event_subscriptions"]["bot_events"]
    scopes = set(m["oauth_config"]["scopes"]["bot"])
    assert {"reactions:read", "reactions:write"} <= scopes
    default = SlackSettings.model_fields["scopes"].default
    assert set(default.split(",")) == scopes  # SLACK_SCOPES: what an OAuth install asks for
