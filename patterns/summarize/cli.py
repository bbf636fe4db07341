"""`aibot summarize FILE|-`: one-shot summary of a file (text, or PDF, Word, HTML read by
the knowledge base's extractor) or stdin."""
from __future__ import annotations

from bot.core.inputs import read_document
from bot.core.messages import CallInfo
from bot.core.summarizer import summarize
from patterns.summarize import PATTERN


def add(cli) -> None:
    p = cli.add("summarize", help="summarize a file: text, .pdf, .docx, .html (or - for stdin)")
    p.add_argument("file", help="path of a UTF-8 text, PDF, Word or HTML file, or - to read stdin")
    p.set_defaults(run=run)


async def run(args, rt) -> int:
    settings = rt.settings
    async with rt.open() as bot:
        text = await read_document(args.file, settings.max_summarize_chars, bot.services.documents)
        summary = await summarize(
            bot.services.llm, text, call=CallInfo(PATTERN, platform="cli", channel=args.file),
            budget_tokens=settings.context_tokens, model=settings.fast_model,
        )
    print(summary)
    return 0
