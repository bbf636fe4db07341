"""Slack adapter (slack-bolt AsyncApp; Socket Mode or HTTP mode). Imported only by the
composition root, bot/app.py."""
from adapters.slack.adapter import SlackAdapter, build_client

__all__ = ["SlackAdapter", "build_client"]
