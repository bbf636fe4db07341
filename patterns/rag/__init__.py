"""RAG pattern: answers grounded in the tenant's knowledge base, with citations.

- `/ask <question>` and mentions whose question has strong hits in the knowledge base:
  the best passages go into the prompt as numbered sources, the answer streams, and the
  sources it was given follow as citations (document, section, page). Below the relevance
  threshold the bot says the answer is not in the knowledge base instead of guessing.
  With no model configured, `/ask` returns the best passages with their citations.
- `/kb add|list|remove|search` manage the knowledge base; files sent in a DM or with an
  "add to the knowledge base" mention are ingested (the router sends them here).
"""
from __future__ import annotations

import hashlib
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncIterator

from bot.core import tokens
from bot.core.errors import UserError
from patterns.rag.store import KnowledgeStore
from bot.core.knowledge import Passage
from bot.core.llm import ChatOptions
from bot.core.messages import CallInfo, Incoming, Reply

log = logging.getLogger(__name__)

PATTERN = "rag"
NOT_IN_KB = "That is not in the knowledge base"

SYSTEM = (
    "You answer questions for a team using only the numbered sources from their knowledge base. "
    "Cite the sources you use with their numbers in square brackets, like [1] or [2][3]. "
    "If the sources do not contain the answer, say that it is not in the knowledge base; do not guess "
    "and do not use outside knowledge. Answer concisely, in the language of the question."
)
_CITED = re.compile(r"\[(\d{1,2})\]")
_PROMPT_OVERHEAD = 300


def sources_block(passages: list[Passage]) -> str:
    """The numbered sources as they appear in the prompt."""
    return "\n\n".join(f"[{i}] ({p.citation})\n{p.text}" for i, p in enumerate(passages, start=1))


def fit_passages(passages: list[Passage], budget: int) -> list[Passage]:
    """The best passages that fit in `budget` tokens (at least one, truncated if need be)."""
    kept: list[Passage] = []
    used = 0
    for p in passages:
        n = tokens.count(p.text) + 20
        if kept and used + n > budget:
            break
        kept.append(p)
        used += n
    return kept


def citations(passages: list[Passage], answer: str) -> str:
    """"Sources:" lines for the passages the answer cites (all given ones if it cites none)."""
    cited = sorted({int(n) for n in _CITED.findall(answer) if 1 <= int(n) <= len(passages)})
    numbers = cited or list(range(1, len(passages) + 1))
    return "\n".join(["**Sources**"] + [f"[{n}] {passages[n - 1].citation}" for n in numbers])


def passages_reply(passages: list[Passage], *, header: str) -> str:
    lines = [header]
    for i, p in enumerate(passages, start=1):
        snippet = " ".join(p.text.split())
        if len(snippet) > 400:
            snippet = snippet[:400].rsplit(" ", 1)[0] + " …"
        lines.append(f"[{i}] **{p.citation}** (score {p.score:.2f})\n> {snippet}")
    return "\n".join(lines)


class Rag:
    """Retrieval + grounded answering over a KnowledgeStore; used by the handlers below,
    `aibot ask`, and available to other patterns."""

    def __init__(self, *, services, store: KnowledgeStore) -> None:
        self.services = services
        self.store = store
        self.settings = services.settings
        self._recent: OrderedDict[tuple, list[Passage]] = OrderedDict()  # fits() → answer, same message

    async def relevant(self, *, tenant: str, question: str, channel: str | None) -> list[Passage]:
        """Passages at or above the relevance threshold, best first."""
        found = await self.store.search(tenant=tenant, query=question, k=self.settings.kb_top_k, channel=channel)
        return [p for p in found if p.score >= self.settings.kb_min_score]

    async def answer(self, question: str, *, tenant: str, channel: str | None, call: CallInfo, passages: list[Passage] | None = None):
        """A reply: `str` (nothing relevant, or no model configured) or an async iterator
        of text (the streamed grounded answer followed by its citations)."""
        question = question.strip()
        if not question:
            raise UserError("Ask a question after /ask, e.g. `/ask how do I rotate the API keys?`")
        if passages is None:
            passages = await self.relevant(tenant=tenant, question=question, channel=channel)
        if not passages:
            return f"{NOT_IN_KB}: I found nothing relevant to “{_short(question)}”. Add documents with /kb add."
        if not self.services.llm.configured:
            return passages_reply(passages, header="No language model is configured, so here are the best passages:")
        budget = self.settings.context_tokens - self.settings.answer_max_tokens - _PROMPT_OVERHEAD - tokens.count(question)
        passages = fit_passages(passages, max(200, budget))
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Sources:\n\n{sources_block(passages)}\n\nQuestion: {question}"},
        ]
        stream = self.services.llm.stream(
            messages, call=call, options=ChatOptions(max_tokens=self.settings.answer_max_tokens, temperature=0.1),
            extra={"chunks": [p.chunk_id for p in passages]},
        )
        return self._with_citations(stream, passages)

    async def _with_citations(self, stream, passages: list[Passage]) -> AsyncIterator[str]:
        parts: list[str] = []
        async for delta in stream:
            parts.append(delta)
            yield delta
        yield "\n\n" + citations(passages, "".join(parts))

    async def fits(self, ctx, msg: Incoming) -> bool:
        """A mention goes to RAG when the knowledge base has a strong hit for it."""
        question = msg.text.strip()
        if not question or msg.attachments or not await self.store.has_documents(msg.tenant):
            return False
        try:
            passages = await self.relevant(tenant=msg.tenant, question=question, channel=msg.channel)
        except UserError as exc:  # e.g. vectors of another model: chat still answers
            log.warning("knowledge base not usable for %s: %s", msg.tenant, exc.user_message)
            return False
        if not passages or passages[0].score < self.settings.kb_strong_score:
            return False
        self._recent[_key(msg)] = passages
        while len(self._recent) > 64:
            self._recent.popitem(last=False)
        return True

    async def on_mention(self, ctx, msg: Incoming):
        passages = self._recent.pop(_key(msg), None)
        return await self.answer(msg.text, tenant=msg.tenant, channel=msg.channel, call=ctx.call(PATTERN), passages=passages)


def _key(msg: Incoming) -> tuple:
    return (msg.platform, msg.tenant, msg.channel, msg.id, msg.text)


def _short(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


# ----------------------------------------------------------------------------- handlers


async def ingest_files(ctx, msg: Incoming) -> str:
    """Add every attachment of `msg` to the tenant's knowledge base; one line per file."""
    store: KnowledgeStore = ctx.services.kb
    limit = ctx.services.settings.kb_max_file_bytes
    who = msg.user_name or msg.user
    lines = []
    for att in msg.attachments:
        try:
            if att.size is not None and att.size > limit:
                raise UserError(f"{att.name} is too large ({att.size / 1048576:.1f} MB; the limit is {limit / 1048576:.1f} MB).")
            data = await ctx.conv.download(att)
            result = await store.ingest(tenant=msg.tenant, name=att.name, data=data, added_by=who)
            lines.append(result.message)
        except UserError as exc:
            lines.append(exc.user_message)
        except Exception:
            log.exception("ingesting %s failed", att.name)
            lines.append(f"{att.name} could not be added because of an error on my side; it has been logged.")
    return "\n".join(lines)


def _paste_name(text: str) -> str:
    """Named after its first line, plus a short content hash: two different pastes that
    start alike must not replace each other."""
    first = next((ln.strip(" #*") for ln in text.splitlines() if ln.strip()), "note")
    first = re.sub(r"[^\w\s.,()-]", "", first)[:60].strip() or "note"
    return f"{first} ({hashlib.sha256(text.encode()).hexdigest()[:6]}).md"


KB_USAGE = "/kb add [text] | /kb list | /kb remove <id> | /kb search <question>"


def register(router, services) -> None:
    from bot.core.embeddings import build_embedder

    store = KnowledgeStore(db=services.db, embedder=build_embedder(services.settings, services.llm.client), settings=services.settings)
    services.kb = store
    rag = Rag(services=services, store=store)

    router.on_ingest(ingest_files)
    router.answerer("rag", fits=rag.fits)(rag.on_mention)

    @router.command("ask", help="answer from the knowledge base, with sources", usage="/ask <question>")
    async def ask(ctx, msg: Incoming):
        return await rag.answer(ctx.args, tenant=msg.tenant, channel=msg.channel, call=ctx.call(PATTERN))

    @router.command("kb", help="manage the knowledge base: add, list, remove, search", usage=KB_USAGE)
    async def kb(ctx, msg: Incoming):
        action, _, rest = ctx.args.partition(" ")
        action, rest = action.lower(), rest.strip()
        if action == "add":
            if msg.attachments:
                return await ingest_files(ctx, msg)
            if not rest:
                raise UserError("Attach files to `/kb add`, or paste the text after it: `/kb add <text>`.")
            result = await store.ingest(tenant=msg.tenant, name=_paste_name(rest), data=rest.encode("utf-8"), added_by=msg.user_name or msg.user)
            return result.message
        # list and search answer only the asker (like /ai-stats); add and remove are shown
        # to the channel, so everyone sees what changed in the knowledge base.
        if action in ("list", "ls", ""):
            return Reply(format_list(await store.list(tenant=msg.tenant, channel=msg.channel)), ephemeral=True)
        if action in ("remove", "rm", "delete"):
            if not rest.lstrip("#").isdigit():
                raise UserError("Say which document to remove by its number from /kb list, e.g. `/kb remove 3`.")
            name = await store.remove(tenant=msg.tenant, document_id=int(rest.lstrip("#")))
            if name is None:
                return f"There is no document #{rest.lstrip('#')} in this workspace's knowledge base (see /kb list)."
            return f"Removed {name} (#{rest.lstrip('#')}) from the knowledge base."
        if action == "search":
            if not rest:
                raise UserError("Say what to look for: `/kb search <question>`.")
            found = await store.search(tenant=msg.tenant, query=rest, k=services.settings.kb_top_k, channel=msg.channel)
            if not found:
                return Reply("Nothing found: the knowledge base is empty.", ephemeral=True)
            return Reply(passages_reply(found, header=f"Best passages for “{_short(rest)}”:"), ephemeral=True)
        return Reply(f"Usage: {KB_USAGE}", ephemeral=True)


def format_list(docs) -> str:
    if not docs:
        return "The knowledge base is empty. Add files with /kb add (or send them to me in a DM)."
    lines = [f"{len(docs)} document{'s' if len(docs) != 1 else ''} in the knowledge base:"]
    for d in docs:
        size = f"{d.size_bytes / 1048576:.1f} MB" if d.size_bytes >= 1048576 else f"{max(1, round(d.size_bytes / 1024))} KB"
        when = d.updated_at.strftime("%Y-%m-%d %H:%M")
        ver = f", v{d.version}" if d.version > 1 else ""
        lines.append(f"#{d.id} {d.name}: {d.chunks} passages, {size}, added by {d.added_by or '?'} on {when} UTC{ver}")
    return "\n".join(lines)
