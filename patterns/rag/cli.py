"""`aibot kb add|list|remove|search|reembed` and `aibot ask`: the knowledge base from the
command line.

Documents added here belong to the tenant given with `--tenant` (default "console", the
console adapter's workspace), tenant-wide unless `--channel` narrows them.
"""
from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterable
from pathlib import Path

from bot.core.errors import UserError
from bot.core.messages import CallInfo
from patterns.rag import PATTERN, Rag, format_list
from patterns.rag.extract import SUPPORTED

CONSOLE_TENANT = "console"
ADD_COMMAND = "aibot kb add PATH"  # what the CLI's hints name (not the chat's /kb add)


def add(cli) -> None:
    add_kb(cli)
    p = cli.add("ask", help="answer a question from the knowledge base, with sources")
    p.add_argument("question", nargs="+")
    p.add_argument("--tenant", default=CONSOLE_TENANT, help="workspace/guild id (default: console)")
    p.add_argument("--channel", default=None)
    p.add_argument("--fresh", action="store_true", help="ask the model again instead of reusing a cached answer")
    p.set_defaults(run=ask)


def add_kb(cli) -> None:
    p = cli.add("kb", help="manage the knowledge base")
    ksub = p.add_subparsers(dest="kb_command", required=True, metavar="ACTION")

    def common(q) -> None:
        q.add_argument("--tenant", default=CONSOLE_TENANT, help="workspace/guild id (default: console)")

    a = ksub.add_parser("add", help="add files or directories (.txt .md .pdf .docx .html)")
    a.add_argument("paths", nargs="+", metavar="PATH")
    a.add_argument("--channel", default=None, help="only answer from these documents in this channel")
    common(a)
    a.set_defaults(run=add_files)

    ls = ksub.add_parser("list", help="list the documents")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    common(ls)
    ls.set_defaults(run=list_docs)

    rm = ksub.add_parser("remove", help="remove a document by its id (see kb list)")
    rm.add_argument("ids", nargs="+", type=int, metavar="ID")
    common(rm)
    rm.set_defaults(run=remove)

    s = ksub.add_parser("search", help="the best passages for a question (no model call)")
    s.add_argument("query", nargs="+")
    s.add_argument("-k", type=int, default=5, help="how many passages (default 5)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--channel", default=None)
    common(s)
    s.set_defaults(run=search)

    r = ksub.add_parser("reembed", help="recompute embeddings after a model change")
    r.add_argument("--all", action="store_true", help="recompute every vector, not only other models'")
    r.set_defaults(run=reembed)


def collect(paths: list[str]) -> list[tuple[Path, str]]:
    """The supported files among `paths`, each with the name it is stored under: a file
    given by itself keeps its file name; a file found in a directory is named by its path
    relative to that directory ("a/README.md"), so two READMEs in two folders are two
    documents. Directories are walked in sorted order."""
    found: list[tuple[Path, str]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found += [(f, f.relative_to(p).as_posix()) for f in sorted(p.rglob("*"))
                      if f.is_file() and f.suffix.lower() in SUPPORTED]
        elif p.exists():
            found.append((p, p.name))
        else:
            raise UserError(f"{raw}: no such file or directory.")
    return found


class Progress:
    """A one-line progress bar on stderr (one line per step when stderr is not a terminal)."""

    def __init__(self, total: int, *, width: int = 28) -> None:
        self.total, self.width = max(total, 1), width
        self.tty = sys.stderr.isatty()

    def update(self, done: int, label: str) -> None:
        filled = int(self.width * done / self.total)
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} {label}"
        if self.tty:
            print("\r" + line[:120].ljust(120), end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    def clear(self) -> None:
        if self.tty:
            print("\r" + " " * 120 + "\r", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=sys.stderr)


async def add_files(args, rt) -> int:
    files = collect(args.paths)
    if not files:
        raise UserError("No .txt, .md, .pdf, .docx or .html files found there.")
    failed = 0
    async with rt.open() as bot:
        kb = bot.feature(Rag).store
        limit = kb.settings.max_file_bytes
        bar = Progress(len(files))

        def reader(path: Path):
            def read() -> bytes:
                if path.stat().st_size > limit:
                    raise UserError(f"{path.name} is too large ({path.stat().st_size / 1048576:.1f} MB; "
                                    f"the limit is {limit / 1048576:.1f} MB).")
                return path.read_bytes()
            return read

        # Small files are embedded together (one model call for many files); each file is
        # still stored in its own transaction and reported as soon as it is.
        items = [(name, reader(path)) for path, name in files]
        done = 0
        if bar.tty:
            bar.update(0, files[0][1])
        async for _name, result in kb.ingest_many(tenant=args.tenant, channel=args.channel, items=items,
                                                   added_by=_user()):
            done += 1
            if isinstance(result, UserError):
                failed += 1
                line = result.user_message
            else:
                line = result.message
            bar.clear()
            print(line, flush=True)
            bar.update(done, _name)
        bar.close()
    return 1 if failed else 0


async def list_docs(args, rt) -> int:
    async with rt.open() as bot:
        docs = await bot.feature(Rag).store.list(tenant=args.tenant)
    if args.json:
        print(json.dumps([
            dict(id=d.id, name=d.name, channel=d.channel, chunks=d.chunks, size_bytes=d.size_bytes,
                 added_by=d.added_by, created_at=d.created_at.isoformat(), updated_at=d.updated_at.isoformat(),
                 version=d.version)
            for d in docs
        ], indent=2))
    else:
        print(format_list(docs, add_hint=f"Add files with `{ADD_COMMAND}`."))
    return 0


async def remove(args, rt) -> int:
    missing = 0
    async with rt.open() as bot:
        for doc_id in args.ids:
            name = await bot.feature(Rag).store.remove(tenant=args.tenant, document_id=doc_id)
            if name is None:
                missing += 1
                print(f"aibot: there is no document #{doc_id} in {args.tenant}'s knowledge base.", file=sys.stderr)
            else:
                print(f"Removed {name} (#{doc_id}).")
    return 1 if missing else 0


def warm_query_model(settings) -> None:
    """Start loading the local model's ONNX copy while the database starts (about 0.3 s of
    a cold `kb search` or `ask` overlapped; bot.core.onnx_embed)."""
    from bot.core import onnx_embed
    from bot.core.embeddings import LOCAL_MODEL

    if settings.embedding_provider != "openai":
        onnx_embed.warm(settings.data_dir / "models", settings.embedding_model or LOCAL_MODEL)


async def search(args, rt) -> int:
    query = " ".join(args.query)
    warm_query_model(rt.settings)
    async with rt.open() as bot:
        found = await bot.feature(Rag).store.search(tenant=args.tenant, query=query, k=args.k, channel=args.channel)
    if args.json:
        print(json.dumps([
            dict(rank=i, document=p.document, document_id=p.document_id, chunk_id=p.chunk_id, heading=p.heading,
                 page=p.page, score=round(p.score, 4), citation=p.citation, text=p.text)
            for i, p in enumerate(found, start=1)
        ], indent=2, ensure_ascii=False))
        return 0
    if not found:
        print("Nothing found: the knowledge base is empty.")
    for i, p in enumerate(found, start=1):
        print(f"[{i}] {p.citation}  (score {p.score:.2f})\n    {' '.join(p.text.split())[:300]}")
    return 0


async def reembed(args, rt) -> int:
    async with rt.open() as bot:
        kb = bot.feature(Rag).store
        bar = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            bar = bar or Progress(total)
            bar.update(done, "chunks")

        n = await kb.reembed(everything=args.all, progress=progress)
        if bar:
            bar.close()
    print(f"Re-embedded {n} chunk{'s' if n != 1 else ''} with {kb.embedder.model} ({kb.embedder.dim} dimensions).")
    return 0


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return "cli"


async def ask(args, rt) -> int:
    question = " ".join(args.question)
    warm_query_model(rt.settings)
    async with rt.open() as bot:
        reply = await bot.feature(Rag).answers.answer(
            question, tenant=args.tenant, channel=args.channel,
            call=CallInfo(PATTERN, platform="cli", tenant=args.tenant, channel=args.channel or ""),
            add_hint=f"Add documents with `{ADD_COMMAND}`.",
            fresh=getattr(args, "fresh", False),
        )
        if isinstance(reply, AsyncIterable):
            async for delta in reply:
                sys.stdout.write(delta)
                sys.stdout.flush()
            sys.stdout.write("\n")
        else:
            print(reply)
    return 0
