"""Local files named on the console: `/kb add PATH...` sends them the way a chat
platform sends an upload (attachments the adapter downloads), so the knowledge base
reads the file instead of storing its path as text."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

from bot.core.messages import Attachment

# a lone word that can only be meant as a file: a path, or a name with a document's suffix
_LOOKS_LIKE_PATH = re.compile(r"^(~|\.{1,2})?/|\.(txt|md|markdown|pdf|docx|html?|csv|json)$", re.IGNORECASE)


class Missing(Exception):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def attachments(text: str) -> tuple[Attachment, ...]:
    """The files `text` names, when it is nothing but existing paths (quotes allowed);
    () when it is text to add. Raises `Missing` for a lone word that looks like a path
    but names no file (a typo must not be stored as a note)."""
    try:
        words = shlex.split(text)
    except ValueError:  # an unbalanced quote: text, not paths
        return ()
    if not words:
        return ()
    paths = [Path(w).expanduser() for w in words]
    if all(p.is_file() for p in paths):
        return tuple(Attachment(name=p.name, ref=str(p.resolve()), size=p.stat().st_size) for p in paths)
    if len(words) == 1 and _LOOKS_LIKE_PATH.search(words[0]):
        raise Missing(words[0])
    return ()


def read(attachment: Attachment) -> bytes:
    return Path(attachment.ref).read_bytes()
