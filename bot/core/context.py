"""A conversation's history as chat messages for a model prompt, newest kept within a
token budget (used by every pattern that answers in a conversation)."""
from __future__ import annotations

from bot.core import tokens
from bot.core.messages import HistoryItem


def context_messages(items: list[HistoryItem], *, budget: int, exclude_id: str = "") -> list[dict]:
    """History as chat messages, oldest first, newest kept within `budget` tokens."""
    items = [it for it in items if it.text.strip() and (not exclude_id or it.id != exclude_id)]
    rendered = [it.text if it.is_bot else f"{it.user}: {it.text}" for it in items]
    keep = tokens.keep_newest(rendered, budget)
    out = []
    for it, text in zip(items[len(items) - keep :], rendered[len(rendered) - keep :]):
        out.append({"role": "assistant" if it.is_bot else "user", "content": text})
    return out
