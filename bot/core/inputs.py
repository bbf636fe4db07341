"""Reading text a person hands to the command line (a file, or `-` for stdin), within a
limit and with one clear sentence for each way it can be wrong."""
from __future__ import annotations

import sys
from pathlib import Path

from bot.core.errors import UserError


def read_text(path: str, limit: int) -> str:
    """The UTF-8 text of `path` (`-`: stdin), at most `limit` characters, not empty."""
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
