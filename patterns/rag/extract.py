"""Text out of uploaded documents, keeping structure: headings, paragraphs, PDF pages.

`extract(name, data, limits)` returns `Extracted` (blocks of text, each with its heading
path and page) or raises `UserError` with one clear sentence: unsupported type, empty,
encrypted, corrupt, too many pages or too much text. CPU-bound: call it off the event loop.
"""
from __future__ import annotations

import io
import logging
import re
import zipfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import PurePath

from bot.core.errors import UserError

log = logging.getLogger(__name__)

SUPPORTED = (".txt", ".md", ".markdown", ".pdf", ".docx", ".html", ".htm")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_PARAGRAPHS = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class Block:
    text: str
    heading: tuple[str, ...] = ()
    page: int | None = None


@dataclass
class Extracted:
    kind: str  # "txt", "md", "pdf", "docx", "html"
    blocks: list[Block] = field(default_factory=list)
    pages: int | None = None

    @property
    def chars(self) -> int:
        return sum(len(b.text) for b in self.blocks)


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_pages: int
    max_chars: int
    # archive formats (.docx): checked on the zip directory before anything is unpacked
    max_unpacked: int = 64 * 1024 * 1024
    max_ratio: int = 100
    max_members: int = 2_000


def kind_of(name: str) -> str | None:
    suffix = PurePath(name).suffix.lower()
    if suffix not in SUPPORTED:
        return None
    return {".markdown": "md", ".htm": "html"}.get(suffix, suffix[1:])


def extract(name: str, data: bytes, limits: Limits) -> Extracted:
    kind = kind_of(name)
    if kind is None:
        raise UserError(
            f"I can't read {name}: only .txt, .md, .pdf, .docx and .html files can go in the knowledge base."
        )
    if len(data) > limits.max_bytes:
        raise UserError(f"{name} is too large ({_mb(len(data))}; the limit is {_mb(limits.max_bytes)}).")
    if not data.strip():
        raise UserError(f"{name} is empty: there is nothing to add.")
    result = _EXTRACTORS[kind](name, data, limits)
    result.blocks = [b for b in result.blocks if b.text.strip()]
    if not result.blocks:
        what = "no text layer (a scan?)" if kind == "pdf" else "no text"
        raise UserError(f"{name} has {what}: there is nothing to add.")
    if result.chars > limits.max_chars:
        raise UserError(f"{name} has too much text ({result.chars:,} characters; the limit is {limits.max_chars:,}).")
    return result


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB"


def _decode(name: str, data: bytes) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    elif b"\x00" not in data[:4096]:
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return data.decode("latin-1")  # legacy 8-bit text: readable rather than refused
    raise UserError(f"{name} is not a text file (it looks binary).")


# ----------------------------------------------------------------------------- text


def _paragraph_blocks(text: str, heading: tuple[str, ...] = (), page: int | None = None) -> list[Block]:
    return [Block(p.strip(), heading, page) for p in _PARAGRAPHS.split(text) if p.strip()]


def _txt(name: str, data: bytes, limits: Limits) -> Extracted:
    return Extracted("txt", _paragraph_blocks(_decode(name, data).replace("\r\n", "\n")))


def _md(name: str, data: bytes, limits: Limits) -> Extracted:
    text = _decode(name, data).replace("\r\n", "\n")
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    buf: list[str] = []
    in_code = False

    def flush() -> None:
        if buf:
            blocks.extend(_paragraph_blocks("\n".join(buf), tuple(h for _, h in path)))
            buf.clear()

    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
        m = None if in_code else _MD_HEADING.match(line)
        if m:
            flush()
            level = len(m.group(1))
            path = [(lv, h) for lv, h in path if lv < level] + [(level, m.group(2).strip())]
        else:
            buf.append(line)
    flush()
    return Extracted("md", blocks)


# ----------------------------------------------------------------------------- html


class _HTMLText(HTMLParser):
    _SKIP = {"script", "style", "noscript", "template", "svg", "head"}
    _BLOCK = {"p", "div", "li", "tr", "br", "section", "article", "pre", "blockquote", "td", "th", "dd", "dt", "table", "ul", "ol"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.path: list[tuple[int, str]] = []
        self.buf: list[str] = []
        self.heading_level: int | None = None
        self.heading_buf: list[str] = []
        self.skip = 0

    def flush(self) -> None:
        text = " ".join("".join(self.buf).split())
        if text:
            self.blocks.append(Block(text, tuple(h for _, h in self.path)))
        self.buf.clear()

    def handle_starttag(self, tag, attrs) -> None:
        if tag in self._SKIP:
            self.skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self.flush()
            self.heading_level, self.heading_buf = int(tag[1]), []
        elif tag in self._BLOCK:
            self.flush()

    def handle_endtag(self, tag) -> None:
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        elif re.fullmatch(r"h[1-6]", tag) and self.heading_level is not None:
            title = " ".join("".join(self.heading_buf).split())
            level = self.heading_level
            self.heading_level = None
            if title:
                self.path = [(lv, h) for lv, h in self.path if lv < level] + [(level, title)]
        elif tag in self._BLOCK:
            self.flush()

    def handle_data(self, data) -> None:
        if self.skip:
            return
        (self.heading_buf if self.heading_level is not None else self.buf).append(data)


def _html(name: str, data: bytes, limits: Limits) -> Extracted:
    parser = _HTMLText()
    parser.feed(_decode(name, data))
    parser.close()
    parser.flush()
    return Extracted("html", parser.blocks)


# ----------------------------------------------------------------------------- pdf, docx


def _pdf(name: str, data: bytes, limits: Limits) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UserError(f"{name} is encrypted (password-protected); upload an unprotected copy.")
        n = len(reader.pages)
    except UserError:
        raise
    except Exception as exc:  # pypdf raises many kinds on broken files
        log.info("unreadable PDF %s: %s", name, type(exc).__name__)
        raise UserError(f"{name} is not a readable PDF (the file seems damaged).") from None
    if n > limits.max_pages:
        raise UserError(f"{name} has too many pages ({n:,}; the limit is {limits.max_pages:,}).")
    blocks: list[Block] = []
    chars = 0
    for i, page in enumerate(reader.pages, start=1):
        try:
            text = page.extract_text() or ""
        except (PdfReadError, Exception) as exc:
            log.info("page %d of %s unreadable: %s", i, name, type(exc).__name__)
            raise UserError(f"{name} is not a readable PDF (page {i} is damaged).") from None
        chars += len(text)
        if chars > limits.max_chars:
            raise UserError(f"{name} has too much text (over {limits.max_chars:,} characters).")
        blocks.extend(_paragraph_blocks(text.replace("\r\n", "\n"), (), i))
    return Extracted("pdf", blocks, pages=n)


def check_archive(name: str, data: bytes, limits: Limits) -> None:
    """Refuse a zip whose declared contents are too big or too compressed, before any of
    it is unpacked. The declared sizes bound what `zipfile` will produce (it stops at
    `file_size`), so a lying header cannot get past this either."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        log.info("unreadable archive %s: %s", name, type(exc).__name__)
        raise UserError(f"{name} is not a readable Word document (the file seems damaged or encrypted).") from None
    if len(members) > limits.max_members:
        raise UserError(f"{name} has too many parts inside ({len(members):,}; the limit is {limits.max_members:,}).")
    unpacked = sum(m.file_size for m in members)
    packed = max(1, sum(m.compress_size for m in members))
    if unpacked > limits.max_unpacked:
        raise UserError(
            f"{name} unpacks to too much data ({_mb(unpacked)}; the limit is {_mb(limits.max_unpacked)})."
        )
    if unpacked > 1024 * 1024 and unpacked / packed > limits.max_ratio:
        raise UserError(
            f"{name} is compressed suspiciously well ({unpacked / packed:,.0f}:1; the limit is "
            f"{limits.max_ratio}:1), so I won't unpack it."
        )


def _docx(name: str, data: bytes, limits: Limits) -> Extracted:
    import docx

    check_archive(name, data, limits)
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:
        log.info("unreadable DOCX %s: %s", name, type(exc).__name__)
        raise UserError(f"{name} is not a readable Word document (the file seems damaged or encrypted).") from None
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    for para in document.paragraphs:
        text = para.text.strip()
        if not text:
            continue
        style = (para.style.name if para.style is not None else "") or ""
        m = re.match(r"Heading\s*(\d)", style)
        level = int(m.group(1)) if m else (0 if style == "Title" else None)
        if level is not None:
            path = [(lv, h) for lv, h in path if lv < level] + [(level, text)]
            continue
        blocks.append(Block(text, tuple(h for _, h in path)))
    for table in document.tables:
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells if c.text.strip()]
            if cells:
                blocks.append(Block(" | ".join(cells), tuple(h for _, h in path)))
    return Extracted("docx", blocks)


_EXTRACTORS = {"txt": _txt, "md": _md, "html": _html, "pdf": _pdf, "docx": _docx}
