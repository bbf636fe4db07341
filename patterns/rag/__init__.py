"""RAG pattern: answers grounded in the tenant's knowledge base, with citations.

- `/ask <question>`, and mentions whose question has a strong hit in the knowledge base,
  get a grounded answer (`patterns.rag.answer`).
- `/kb add|list|remove|search` manage the knowledge base; files sent in a DM or with an
  "add to the knowledge base" mention are ingested (the router sends them here).
- The store (`patterns.rag.store`: extraction, chunking, pgvector retrieval) is also the
  core's `services.kb`, so other features (the agent's `kb_search`) can search it.
- `aibot kb ...` and `aibot ask` on the command line (`patterns.rag.cli`).
"""
from __future__ import annotations

import hashlib
import logging
import re

from bot.core.answer_cache import fresh_flag
from bot.core.commands import Attachment, Group, answerer, command, ingest
from bot.core.embeddings import build_embedder
from bot.core.errors import UserError
from bot.core.feature import Feature
from bot.core.messages import Incoming
from bot.core.roles import refusal
from bot.core.tenants import TenantData
from patterns.rag.answer import GroundedAnswers, passages_reply, short
from patterns.rag.settings import RagSettings
from patterns.rag.documents import Documents
from patterns.rag.store import KnowledgeStore

log = logging.getLogger(__name__)

PATTERN = "rag"


class Rag(Feature):
    name = "rag"
    settings_model = RagSettings
    groups = (Group("kb", description="Manage the knowledge base: add, list, remove, search"),)
    settings: RagSettings

    def __init__(self, host) -> None:
        super().__init__(host)
        llm = self.services.llm
        self.store = KnowledgeStore(db=self.services.db, embedder=build_embedder(host.settings, llm.client),
                                    settings=self.settings)
        self.services.kb = self.store
        cached = getattr(self.services.answer_cache, "semantic", None)
        if cached is not None:  # answers quoting a replaced or removed document go with it
            self.store.on_change.append(cached.invalidate_documents)
        if self.services.tenants is not None:  # a tenant's documents go with its export / deletion
            self.services.tenants.register("documents", TenantData(
                export=lambda platform, tenant: self.store.export_tenant(tenant),
                delete=lambda platform, tenant: self.store.delete_tenant(tenant)))
        self.services.documents = Documents(limits=lambda: self.store.limits)
        self.answers = GroundedAnswers(llm=llm, store=self.store, settings=self.settings, core=host.settings,
                                       answers=self.services.answer_cache)

    async def start(self) -> None:
        """When the knowledge base has documents, load the local embedding model in the
        background as the bot starts, so that the first question does not wait for it."""
        preload = getattr(self.store.embedder, "preload", None)
        if preload is not None and await self.store.has_any_documents():
            preload()

    # --- mentions and files ---------------------------------------------------------

    @answerer
    async def from_knowledge_base(self, ctx, msg: Incoming):
        """A mention whose question has a strong hit in the knowledge base; else not ours."""
        fresh, question = fresh_flag(msg.text)
        if not question or msg.attachments or not await self.store.has_documents(msg.tenant):
            return None
        if not (await self.services.prefs.for_message(msg)).auto_route:  # the workspace turned it off
            return None
        try:
            passages = await self.answers.strong(tenant=msg.tenant, question=question, channel=msg.channel)
        except UserError as exc:  # e.g. vectors of another model: chat still answers
            log.warning("knowledge base not usable for %s: %s", msg.tenant, exc.user_message)
            return None
        if passages is None:
            return None
        return await self.answers.answer(question, tenant=msg.tenant, channel=msg.channel, call=ctx.call(PATTERN),
                                         passages=passages, fresh=fresh)

    @ingest
    async def ingest_files(self, ctx, msg: Incoming) -> str:
        """Add every attachment of `msg` to the tenant's knowledge base; one line per file."""
        limit = self.settings.max_file_bytes
        who = msg.user_name or msg.user
        lines = []
        for att in msg.attachments:
            try:
                if att.size is not None and att.size > limit:
                    raise UserError(f"{att.name} is too large ({att.size / 1048576:.1f} MB; "
                                    f"the limit is {limit / 1048576:.1f} MB).")
                data = await ctx.conv.download(att)
                result = await self.store.ingest(tenant=msg.tenant, name=att.name, data=data, added_by=who,
                                                 owner=msg.user)
                lines.append(result.message)
            except UserError as exc:
                lines.append(exc.user_message)
            except Exception:
                log.exception("ingesting %s failed", att.name)
                lines.append(f"{att.name} could not be added because of an error on my side; it has been logged.")
        return "\n".join(lines)

    # --- commands -------------------------------------------------------------------

    @command("ask", description="Ask a question, answered from the knowledge base with sources",
             missing="Ask a question after /ask, e.g. `/ask how do I rotate the API keys?`")
    async def ask(self, ctx, msg: Incoming, question: str, fresh: bool = False):
        """question: what you want to know
        fresh: ask the model again instead of reusing a cached answer"""
        return await self.answers.answer(question, tenant=msg.tenant, channel=msg.channel, call=ctx.call(PATTERN),
                                         fresh=fresh)

    @command("kb add", description="Add a file or pasted text to the knowledge base")
    async def kb_add(self, ctx, msg: Incoming, text: str = "", file: Attachment | None = None) -> str:
        """text: text to add (named after its first line)
        file: a text, Markdown, PDF, Word or HTML file"""
        if msg.attachments:
            return await self.ingest_files(ctx, msg)
        if not text:
            raise UserError("Attach files to `/kb add`, or paste the text after it: `/kb add <text>`.")
        result = await self.store.ingest(tenant=msg.tenant, name=paste_name(text), data=text.encode("utf-8"),
                                         added_by=msg.user_name or msg.user, owner=msg.user)
        return result.message

    # list and search answer only the asker; add and remove are shown to the channel,
    # so everyone sees what changed in the knowledge base
    @command("kb list", description="List the documents in the knowledge base", ephemeral=True,
             aliases=("ls",), default=True)
    async def kb_list(self, ctx, msg: Incoming) -> str:
        return format_list(await self.store.list(tenant=msg.tenant, channel=msg.channel))

    @command("kb search", description="Search the knowledge base", ephemeral=True,
             missing="Say what to look for: `/kb search <question>`.")
    async def kb_search(self, ctx, msg: Incoming, query: str) -> str:
        """query: what to look for"""
        found = await self.store.search(tenant=msg.tenant, query=query, k=self.settings.top_k, channel=msg.channel)
        if not found:
            return "Nothing found: the knowledge base is empty."
        return passages_reply(found, header=f"Best passages for “{short(query)}”:")

    # members remove what they added; admins remove anything
    @command("kb remove", description="Remove a document from the knowledge base", aliases=("rm", "delete"),
             missing="Say which document to remove by its number from /kb list, e.g. `/kb remove 3`.")
    async def kb_remove(self, ctx, msg: Incoming, document: str) -> str:
        """document: the document's id, as /kb list shows it"""
        number = document.lstrip("#")
        if not number.isdigit():
            raise UserError("Say which document to remove by its number from /kb list, e.g. `/kb remove 3`.")
        doc = int(number)
        if not msg.is_admin:
            owner = await self.store.owner_of(tenant=msg.tenant, document_id=doc)
            if owner is not None and owner != msg.user:
                raise UserError(refusal(msg.platform, "remove documents other people added"))
        name = await self.store.remove(tenant=msg.tenant, document_id=doc, owner=None if msg.is_admin else msg.user)
        if name is None:
            return f"There is no document #{number} in this workspace's knowledge base (see /kb list)."
        return f"Removed {name} (#{number}) from the knowledge base."

    def mount(self, http) -> None:
        from patterns.rag.api import mount

        mount(http, self.host, self.answers)

    @classmethod
    def add_cli(cls, cli) -> None:
        from patterns.rag import cli as commands

        commands.add(cli)


def paste_name(text: str) -> str:
    """Named after its first line, plus a short content hash: two different pastes that
    start alike must not replace each other."""
    first = next((ln.strip(" #*") for ln in text.splitlines() if ln.strip()), "note")
    first = re.sub(r"[^\w\s.,()-]", "", first)[:60].strip() or "note"
    return f"{first} ({hashlib.sha256(text.encode()).hexdigest()[:6]}).md"


CHAT_ADD_HINT = "Add files with /kb add (or send them to me in a DM)."


def format_list(docs, *, add_hint: str = CHAT_ADD_HINT) -> str:
    """The documents, one line each; `add_hint` says how to add some where there are none
    (a chat command in chat, the CLI's own command on the command line)."""
    if not docs:
        return f"The knowledge base is empty. {add_hint}"
    lines = [f"{len(docs)} document{'s' if len(docs) != 1 else ''} in the knowledge base:"]
    for d in docs:
        when = d.updated_at.strftime("%Y-%m-%d %H:%M")
        ver = f", v{d.version}" if d.version > 1 else ""
        passages = f"{d.chunks} passage{'s' if d.chunks != 1 else ''}"
        lines.append(f"#{d.id} {d.name}: {passages}, {size_text(d.size_bytes)}, added by {d.added_by or '?'} "
                     f"on {when} UTC{ver}")
    return "\n".join(lines)


def size_text(n: int) -> str:
    """`70 B`, `12 KB`, `3.4 MB`: a small file is not rounded up to a kilobyte."""
    if n < 1024:
        return f"{n} B"
    if n < 1048576:
        return f"{round(n / 1024)} KB"
    return f"{n / 1048576:.1f} MB"


FEATURE = Rag
