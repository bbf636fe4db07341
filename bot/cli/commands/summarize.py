"""`aibot summarize FILE|-`: one-shot summary of a text file or stdin."""
from __future__ import annotations

import sys
from pathlib import Path

from bot.app import App
from bot.core.errors import UserError
from bot.core.messages import CallInfo
from bot.core.summarizer import summarize
from patterns.summarize import PATTERN


def add_parser(sub) -> None:
    p = sub.add_parser("summarize", help="summarize a text file (or - for stdin)")
    p.add_argument("file", help="path of a UTF-8 text file, or - to read stdin")
    p.set_defaults(func=run)


def read_text(path: str, limit: int) -> str:
    try:
        if path == "-":
            data = sys.stdin.buffer.read(limit * 4 + 1)
        else:
            with Path(path).open("rb") as fh:
                data = fh.read(limit * 4 + 1)
    except OSError as exc:
        raise UserError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text; convert it first (e.g. with iconv).") from None
    if len(text) > limit:
        raise UserError(f"{path} is too long ({len(text):,}+ characters; the limit is {limit:,}, AIBOT_MAX_SUMMARIZE_CHARS).")
    if not text.strip():
        raise UserError(f"{path} is empty: there is nothing to summarize.")
    return text


async def run(args, settings) -> int:
    text = read_text(args.file, settings.max_summarize_chars)
    async with await App.open(settings) as app:
        summary = await summarize(
            app.services.llm, text, call=CallInfo(PATTERN, platform="cli", channel=args.file),
            budget_tokens=settings.context_tokens, model=settings.fast_model,
        )
    print(summary)
    return 0
