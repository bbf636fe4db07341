"""The semantic answer cache (pgvector, in the bot's PostgreSQL).

An answer is stored with the question's embedding, under a key that says when it may be
reused: the tenant (a workspace never gets another's answer), the kind of answer
(`chat`, `rag`, `summary`), the model, the prompt version and a scope (for RAG a hash
of the passages the answer was given, so a new or replaced document that changes what
is retrieved changes the key). Within a key, the nearest stored question is reused when
its cosine similarity reaches the threshold *and* its key terms (numbers, names,
polarity: `bot.core.keyterms`) are the same, so "VAT in the EU" never answers "VAT in
the US". Summaries are matched on their normalised text only: an embedding of a long
text reads only its start. A cache failure is logged and is a miss.
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text

from bot.core.coalesce import Coalescer
from bot.core.embeddings import INTERACTIVE_TEXTS
from bot.core.keyterms import same_key_terms
from bot.core.priority import is_bulk
from bot.core.messages import utcnow

log = logging.getLogger(__name__)

CANDIDATES = 5
# The nearest-neighbour search filters by tenant and key, so HNSW must keep scanning past
# other tenants' entries (pgvector's iterative scan). Lookups run without a transaction
# (one round trip), so the setting is made once per pooled connection, for its session;
# the only other HNSW search (the knowledge base) sets the same value for itself.
_RELAXED = "aibot_hnsw_relaxed"


@dataclass(frozen=True)
class AnswerKey:
    tenant: str
    kind: str  # chat, rag, summary
    model: str
    prompt_version: str
    scope: str = ""


@dataclass(frozen=True)
class SemanticHit:
    id: int
    question: str
    answer: str
    prompt_tokens: int
    completion_tokens: int
    similarity: float


def normalise(question: str) -> str:
    return " ".join(re.sub(r"[\s?!.]+$", "", question.strip().lower()).split())


def norm_key(question: str) -> str:
    return hashlib.sha256(normalise(question).encode("utf-8")).hexdigest()


def version_of(*parts: str) -> str:
    """A prompt version: changes whenever the prompt text does."""
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:16]


def scope_of(ids) -> str:
    """A scope from the ids of what an answer was built from (order does not matter)."""
    return hashlib.sha256(",".join(str(i) for i in sorted(ids)).encode()).hexdigest()[:32]


class Vector(list):
    """A question's embedding, with its pgvector text made once (a lookup and a store both send it)."""

    _literal: str | None = None

    @property
    def literal(self) -> str:
        if self._literal is None:
            self._literal = "[" + ",".join(f"{x:.6g}" for x in self) + "]"
        return self._literal


def _vec(v: list[float]) -> str:
    return (v if isinstance(v, Vector) else Vector(v)).literal


class SemanticCache:
    def __init__(self, *, db, embedder, threshold: float, ttl_seconds: int) -> None:
        self.db = db
        self.embedder = embedder
        self.threshold = threshold
        self.ttl = timedelta(seconds=ttl_seconds)
        self._questions: Coalescer[str, list[float]] = Coalescer(lambda texts: self.embedder.embed(texts),
                                                                 max_batch=INTERACTIVE_TEXTS)

    @property
    def enabled(self) -> bool:
        return self.ttl.total_seconds() > 0

    async def embed(self, question: str) -> list[float] | None:
        """The question's vector (None when the embedder fails: a miss). Questions asked
        while another's embedding is on its way share the next request."""
        try:
            if is_bulk():  # a digest or bulk job: behind questions, never in their batch
                [v] = await self.embedder.embed([question])
            else:
                v = await self._questions.submit(question)
            return Vector(v)
        except Exception:
            log.warning("could not embed a question for the answer cache; it is a miss", exc_info=True)
            return None

    async def lookup(self, key: AnswerKey, question: str, vector: list[float] | None) -> SemanticHit | None:
        """The cached answer to reuse for `question` under `key`, or None."""
        if not self.enabled:
            return None
        try:
            async with self.db.session.autocommit() as conn:
                rows = await self._candidates(conn, key, question, vector)
                for row in rows:
                    sim = float(row.sim)
                    if row.exact or (sim >= self.threshold and same_key_terms(question, row.question)):
                        await conn.execute(text("UPDATE answer_cache SET hits = hits + 1 WHERE id = :id"), {"id": row.id})
                        return SemanticHit(row.id, row.question, row.answer, row.prompt_tokens,
                                           row.completion_tokens, 1.0 if row.exact else sim)
        except Exception:
            log.warning("answer cache lookup failed; calling the model", exc_info=True)
        return None

    async def _candidates(self, conn, key: AnswerKey, question: str, vector: list[float] | None):
        """The newest entry for the same normalised question, else (given a vector) the
        nearest ones: one round trip either way."""
        params = dict(tenant=key.tenant, kind=key.kind, model=key.model[:200], version=key.prompt_version,
                      scope=key.scope, norm=norm_key(question))
        where = ("tenant = :tenant AND kind = :kind AND model = :model AND prompt_version = :version "
                 "AND scope = :scope AND expires_at > now()")
        exact = (f"SELECT id, question, answer, prompt_tokens, completion_tokens, 1.0::float8 AS sim, true AS exact "
                 f"FROM answer_cache WHERE {where} AND norm_key = :norm ORDER BY id DESC LIMIT 1")
        if vector is None:
            return (await conn.execute(text(exact), params)).all()
        dim = len(vector)
        params.update(q=_vec(vector), embed_model=self.embedder.model)
        if not conn.info.get(_RELAXED):  # per connection, not per lookup (see RELAXED)
            await conn.execute(text("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', false)"))
            conn.info[_RELAXED] = True
        return (await conn.execute(text(
            f"""WITH exact AS ({exact})
                SELECT * FROM exact
                UNION ALL
                (SELECT id, question, answer, prompt_tokens, completion_tokens,
                        1 - (embedding::vector({dim}) <=> CAST(:q AS vector({dim}))) AS sim, false AS exact
                 FROM answer_cache WHERE {where} AND dim = {dim} AND embed_model = :embed_model
                   AND NOT EXISTS (SELECT 1 FROM exact)
                 ORDER BY embedding::vector({dim}) <=> CAST(:q AS vector({dim})) LIMIT {CANDIDATES})"""),
            params)).all()

    async def store(self, key: AnswerKey, question: str, vector: list[float] | None, answer: str, *,
                    prompt_tokens: int, completion_tokens: int, documents: list[int] | None = None) -> None:
        """Keep an answer for reuse (a fresh answer to the same question replaces the old one)."""
        if not self.enabled or not answer.strip():
            return
        params = dict(tenant=key.tenant, kind=key.kind, model=key.model[:200], version=key.prompt_version,
                      scope=key.scope, norm=norm_key(question), question=question[:4000], answer=answer,
                      pt=prompt_tokens, ct=completion_tokens, docs=documents, expires=utcnow() + self.ttl,
                      embed_model=self.embedder.model if vector is not None else None,
                      dim=len(vector) if vector is not None else None,
                      e=_vec(vector) if vector is not None else None)
        try:
            async with self.db.session.autocommit() as conn:  # one statement: whole or not at all
                # the entry this answer replaces, and the workspace's expired ones (the table stays
                # small), dropped in the same statement as the new one is written: one round trip
                await conn.execute(text(
                    """WITH replaced AS (
                           DELETE FROM answer_cache WHERE tenant = :tenant AND (expires_at <= now() OR (kind = :kind
                               AND model = :model AND prompt_version = :version AND scope = :scope
                               AND norm_key = :norm)))
                       INSERT INTO answer_cache (tenant, kind, model, prompt_version, scope, norm_key, question,
                           embed_model, dim, embedding, answer, prompt_tokens, completion_tokens, documents, expires_at)
                       VALUES (:tenant, :kind, :model, :version, :scope, :norm, :question, :embed_model, :dim,
                               CAST(:e AS vector), :answer, :pt, :ct, :docs, :expires)"""), params)
        except Exception:
            log.warning("answer cache write failed", exc_info=True)

    async def invalidate_documents(self, tenant: str, document_ids: list[int]) -> int:
        """Drop the tenant's answers built from any of these documents (changed or removed);
        a document being added is bulk work, so this stays within its share of the pool."""
        async with self.db.begin() as conn:
            res = await conn.execute(text(
                "DELETE FROM answer_cache WHERE tenant = :tenant AND documents && CAST(:ids AS bigint[])"),
                dict(tenant=tenant, ids=list(document_ids)))
        return res.rowcount or 0

    async def forget(self, entry_id: int) -> None:
        """Drop one cached answer (someone rated it 👎)."""
        async with self.db.engine.begin() as conn:
            await conn.execute(text("DELETE FROM answer_cache WHERE id = :id"), {"id": entry_id})

    async def export_tenant(self, platform: str, tenant: str) -> list[dict]:
        """A workspace's cached answers (question, answer, when), for its data export."""
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT kind, question, answer, created_at FROM answer_cache WHERE tenant = :t ORDER BY id"),
                {"t": tenant})).mappings().all()
        return [{**r, "created_at": r["created_at"].isoformat()} for r in rows]

    async def delete_tenant(self, platform: str, tenant: str) -> dict[str, int]:
        """Drop every cached answer of a workspace (its data deletion)."""
        async with self.db.engine.begin() as conn:
            res = await conn.execute(text("DELETE FROM answer_cache WHERE tenant = :t"), {"t": tenant})
        return {"cached answers": res.rowcount or 0}

    async def purge_expired(self) -> int:
        async with self.db.engine.begin() as conn:
            res = await conn.execute(text("DELETE FROM answer_cache WHERE expires_at <= now()"))
        return res.rowcount or 0
