"""The App Home tab: what the bot is set to in this workspace and, for its admins, the
workspace's model usage and cost (Block Kit, published with `views.publish` when someone
opens the tab)."""
from __future__ import annotations

from decimal import Decimal

from bot.core.preferences import Preferences

MAX_TEXT = 2_900  # a section's text is at most 3,000 characters


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_TEXT]}}


def home_view(*, bot_name: str, prefs: Preferences, admin: bool, usage: list | None) -> dict:
    """The Home tab for one person: `usage` (bot.core.reports rows by pattern, last 30 days) for admins."""
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{bot_name} in this workspace"}},
        _section(f"Mention me or DM me to ask anything; `/help` lists the commands. "
                 f"{'You can change the settings below with `/aibot settings`.' if admin else ''}"),
    ]
    if not admin:
        blocks.append(_section("_Settings and usage are shown to workspace admins and owners._"))
        return {"type": "home", "blocks": blocks}
    persona = " ".join((prefs.persona or "the built-in one").split())
    lines = [
        f"*Persona:* {persona[:500]}",
        f"*Answer language:* {prefs.language or 'the question’s'}",
        f"*Models:* {prefs.chat_model or 'default'} for answers, {prefs.fast_model or 'default'} for summaries",
        f"*Routing to the agent and the knowledge base:* {'on' if prefs.auto_route else 'off'}",
    ]
    if prefs.monthly_budget_usd is not None:
        lines.append(f"*Monthly budget:* ${prefs.monthly_budget_usd:g}")
    blocks += [{"type": "divider"}, _section("*Settings*\n" + "\n".join(lines)), {"type": "divider"}]
    if not usage:
        blocks.append(_section("*Usage, last 30 days*\nNo model calls yet."))
    else:
        rows = [f"• {s.group}: {s.requests} requests, {s.prompt_tokens + s.completion_tokens:,} tokens, "
                f"${s.cost_usd:.4f}" for s in usage]
        total = sum((s.cost_usd for s in usage), Decimal(0))
        blocks.append(_section("*Usage, last 30 days*\n" + "\n".join(rows) + f"\n*Total:* ${total:.4f}"))
    return {"type": "home", "blocks": blocks}
