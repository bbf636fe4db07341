"""Reading text a person hands to the command line (a file, or `-` for stdin), within a
limit and with one clear sentence for each way it can be wrong."""
from __future__ import annotations

import sys
from pathlib import Path, PurePath

from bot.core.documents import DocumentReader
from bot.core.errors import UserError


def read_text(path: str, limit: int, *, also: str = "") -> str:
    """The UTF-8 text of `path` (`-`: stdin), at most `limit` characters, not empty.
    `also` names other kinds of file the caller reads, for the not-UTF-8 message."""
    data = _read(path, limit * 4 + 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text{also}; convert it first (e.g. with iconv).") from None
    return _checked(path, text, limit)


async def read_document(path: str, limit: int, documents: DocumentReader | None) -> str:
    """Like `read_text`, but a PDF, Word or HTML file is read by `documents` (the
    knowledge base's extractor) when the bot has one."""
    if documents is None:
        return read_text(path, limit)
    if path == "-" or not documents.reads(path):
        return read_text(path, limit, also=" (nor a .pdf, .docx or .html document)")
    data = _read(path, documents.max_bytes + 1)
    if len(data) > documents.max_bytes:
        raise UserError(f"{path} is too large (the limit is {documents.max_bytes / 1048576:.1f} MB, AIBOT_KB_MAX_FILE_BYTES).")
    return _checked(path, await documents.text(PurePath(path).name, data), limit)


def _read(path: str, cap: int) -> bytes:
    try:
        if path == "-":
            return sys.stdin.buffer.read(cap)
        with Path(path).open("rb") as fh:
            return fh.read(cap)
    except OSError as exc:
        raise UserError(f"Cannot read {path}: {exc.strerror or exc}.") from None


def _checked(path: str, text: str, limit: int) -> str:
    if len(text) > limit:
        raise UserError(f"{path} is too long ({len(text):,}+ characters; the limit is {limit:,}, AIBOT_MAX_SUMMARIZE_CHARS).")
    if not text.strip():
        raise UserError(f"{path} is empty: there is nothing to summarize.")
    return text
