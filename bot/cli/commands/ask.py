"""`aibot ask QUESTION`: a grounded answer from the knowledge base, streamed to stdout."""
from __future__ import annotations

import sys
from collections.abc import AsyncIterable

from bot.app import App
from bot.cli.commands.kb import CONSOLE_TENANT
from bot.core.messages import CallInfo
from patterns.rag import PATTERN, Rag


def add_parser(sub) -> None:
    p = sub.add_parser("ask", help="answer a question from the knowledge base, with sources")
    p.add_argument("question", nargs="+")
    p.add_argument("--tenant", default=CONSOLE_TENANT, help="workspace/guild id (default: console)")
    p.add_argument("--channel", default=None)
    p.set_defaults(func=run)


async def run(args, settings) -> int:
    question = " ".join(args.question)
    async with await App.open(settings) as app:
        rag = Rag(services=app.services, store=app.services.kb)
        reply = await rag.answer(
            question, tenant=args.tenant, channel=args.channel,
            call=CallInfo(PATTERN, platform="cli", tenant=args.tenant, channel=args.channel or ""),
        )
        if isinstance(reply, AsyncIterable):
            async for delta in reply:
                sys.stdout.write(delta)
                sys.stdout.flush()
            sys.stdout.write("\n")
        else:
            print(reply)
    return 0
