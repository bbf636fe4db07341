"""`aibot run` (every configured platform, else the console) and `aibot chat` (console)."""
from __future__ import annotations

import sys

from bot.app import App
from bot.core.config import LLM_SETUP_HINT


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run the bot on every configured platform (the console if none)")
    p.set_defaults(func=run, console_only=False)
    p = sub.add_parser("chat", help="talk to the bot on this terminal")
    p.set_defaults(func=run, console_only=True)


async def run(args, settings) -> int:
    if not settings.llm_configured:
        print(f"aibot: note: {LLM_SETUP_HINT}", file=sys.stderr)
    async with await App.open(settings) as app:
        await app.serve(app.adapters(console_only=args.console_only))
    return 0
