"""Markdown (what patterns write) to Slack's mrkdwn (what `text` fields render).

`**bold**` → `*bold*`, `*italic*`/`_italic_` → `_italic_`, `~~gone~~` → `~gone~`,
`[label](https://…)` → `<https://…|label>`, `# Heading` → `*Heading*`, `- item` → `• item`.
`&`, `<`, `>` are escaped as Slack requires; code spans and blocks keep their content.
"""
from __future__ import annotations

import re

_CODE = re.compile(r"(```.*?(?:```|\Z)|`[^`\n]+`)", re.DOTALL)
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![\*\w])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![\*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_BULLET = re.compile(r"^(\s*)[-*+]\s+", re.MULTILINE)


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _prose(text: str) -> str:
    text = escape(text)
    links: list[str] = []

    def keep_link(m: re.Match) -> str:
        links.append(f"<{m.group(2)}|{m.group(1)}>")
        return f"\x00{len(links) - 1}\x00"

    text = _LINK.sub(keep_link, text)
    text = _BULLET.sub(lambda m: f"{m.group(1)}• ", text)
    text = _ITALIC.sub(r"_\1_", text)
    text = _BOLD.sub(lambda m: f"\x01{m.group(2)}\x01", text)
    text = _HEADING.sub(lambda m: f"\x01{m.group(1).strip(chr(1))}\x01", text)
    text = _STRIKE.sub(r"~\1~", text)
    text = text.replace("\x01", "*")
    return re.sub(r"\x00(\d+)\x00", lambda m: links[int(m.group(1))], text)


def to_mrkdwn(markdown: str) -> str:
    """Slack mrkdwn for a Markdown text."""
    out = []
    for i, part in enumerate(_CODE.split(markdown)):
        if i % 2:  # code: only Slack's three escapes apply
            if part.startswith("```"):
                # Slack ignores a language tag; drop it so it is not shown as code
                part = re.sub(r"^```[\w+-]*\n", "```\n", part)
            out.append(escape(part))
        else:
            out.append(_prose(part))
    return "".join(out)
