"""The knowledge base store: ingestion entry point and tenant-scoped retrieval (pgvector).

    store = KnowledgeStore(db=db, embedder=embedder, settings=settings)
    result = await store.ingest(tenant="T1", name="handbook.pdf", data=raw, added_by="alice")
    passages = await store.search(tenant="T1", query="how do I rotate keys?", k=5)

Every document belongs to a tenant (and optionally one channel) and is never returned for
another. One transaction per document: a document is fully stored or not at all. The
same bytes twice are recognized by their SHA-256; the same name with new content replaces
the old chunks atomically (the version goes up).

Retrieval: dense top-k on the HNSW index with pgvector's iterative index scan, so the
tenant filter still returns k rows; by default (hybrid) the dense top-100 are re-ranked by
cosine + BM25 word share, then once more after pseudo-relevance feedback
(`patterns.rag.ranking`; docs/benchmarks.md has the measurements behind it).
"""
from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath

from sqlalchemy import text

from bot.core.embeddings import Embedder
from bot.core.errors import UserError
from bot.core.knowledge import Passage
from patterns.rag import ranking
from patterns.rag.chunking import Chunk, chunk
from patterns.rag.extract import Limits, extract, kind_of
from patterns.rag.settings import RagSettings

log = logging.getLogger(__name__)

PRESENCE_TTL = 30.0  # seconds a tenant's "has documents" answer is trusted (changes by other processes)
# Hybrid and RRF rank the dense top-100 (HNSW) with the full-text rank of those same
# candidates: as good as a full-text search of the whole tenant, and fast at any size (only
# 100 rows are ranked by ts_rank; docs/benchmarks.md, "Knowledge base").
FUSION_DEPTH = 100
FULLTEXT_WEIGHT = 1.0
MODES = ("dense", "fulltext", "rrf", "blend", "hybrid")
# the question's lexemes OR-ed (plainto_tsquery AND-s them: too strict for questions)
_OR_QUERY = "CAST(replace(CAST(plainto_tsquery('english', :query) AS text), ' & ', ' | ') AS tsquery)"


@dataclass(frozen=True)
class IngestResult:
    status: str  # "added", "replaced", "unchanged"
    document_id: int
    name: str
    chunks: int
    pages: int | None = None
    same_as: str | None = None  # unchanged: the name it is stored under

    @property
    def message(self) -> str:
        """One sentence for the user."""
        if self.status == "unchanged":
            if self.same_as and self.same_as != self.name:
                return f"{self.name} is already in the knowledge base as {self.same_as} (#{self.document_id}); nothing changed."
            return f"{self.name} is already in the knowledge base (#{self.document_id}), unchanged."
        pages = f" from {self.pages} page{'s' if self.pages != 1 else ''}" if self.pages else ""
        verb = "Replaced" if self.status == "replaced" else "Added"
        extra = " with the new version" if self.status == "replaced" else ""
        return f"{verb} {self.name}{extra}: {self.chunks} passage{'s' if self.chunks != 1 else ''}{pages} (#{self.document_id})."


@dataclass(frozen=True)
class _Prepared:
    """A document extracted and chunked, waiting for its vectors."""
    tenant: str
    channel: str | None
    name: str
    digest: str
    size: int
    kind: str
    pages: int | None
    chunks: list[Chunk]

    @property
    def texts(self) -> list[str]:
        return [embed_text(self.name, c) for c in self.chunks]


@dataclass(frozen=True)
class DocumentInfo:
    id: int
    name: str
    channel: str | None
    chunks: int
    size_bytes: int
    added_by: str
    created_at: datetime
    updated_at: datetime
    version: int
    owner: str = ""  # the platform user id of who added it ("" from the command line)


def vector_literal(v: list[float]) -> str:
    return "[" + ",".join(f"{x:.6g}" for x in v) + "]"


def embed_text(name: str, c: Chunk) -> str:
    """What is embedded for a chunk: its section heading (or the document's title) + text."""
    title = c.heading or PurePath(name).stem.replace("_", " ").replace("-", " ")
    return f"{title}\n{c.text}"


class KnowledgeStore:
    """Implements `bot.core.knowledge.KnowledgeBase` (search) plus ingestion and management."""

    def __init__(self, *, db, embedder: Embedder, settings: RagSettings) -> None:
        self.db = db
        self.embedder = embedder
        self.settings = settings
        self._indexed_dims: set[int] = {384}
        self._presence: dict[str, tuple[bool, float]] = {}  # tenant -> (has documents, until)
        self._index_lock = asyncio.Lock()
        # called with (tenant, [document id]) after a document is replaced or removed, e.g. to
        # drop cached answers that quote its old text
        self.on_change: list[Callable[[str, list[int]], Awaitable[object]]] = []

    @property
    def limits(self) -> Limits:
        s = self.settings
        return Limits(max_bytes=s.max_file_bytes, max_pages=s.max_pages, max_chars=s.max_chars)

    # ------------------------------------------------------------------ ingestion

    async def ingest(
        self, *, tenant: str, name: str, data: bytes, added_by: str = "", channel: str | None = None,
        owner: str = "",
    ) -> IngestResult:
        """Add (or replace) one document; `owner` is the adder's user id (they may remove it).
        Raises UserError with one sentence on bad input; then nothing is stored."""
        ready = await self._prepare(tenant, channel, name, data)
        if isinstance(ready, IngestResult):
            return ready
        vectors = await self.embedder.embed(ready.texts)
        return await self._store(ready, vectors, added_by, owner)

    async def ingest_many(
        self, *, tenant: str, items, added_by: str = "", channel: str | None = None, batch_chunks: int = 256,
        owner: str = "",
    ) -> AsyncIterator[tuple[str, IngestResult | UserError]]:
        """Add many documents, `items` being (name, bytes) pairs (or callables returning the
        bytes, read when needed). Small documents are embedded together, up to
        `batch_chunks` chunks per model call, as fast as one big document; each document is
        still stored in its own transaction, and its outcome (an IngestResult, or the
        UserError that kept it out) is yielded in input order as soon as it is stored."""
        pending: list[tuple[str, _Prepared | IngestResult | UserError]] = []
        size = 0

        async def flush():
            nonlocal pending, size
            texts = [t for _, r in pending if isinstance(r, _Prepared) for t in r.texts]
            vectors = await self.embedder.embed(texts) if texts else []
            at = 0
            for name, r in pending:
                if isinstance(r, _Prepared):
                    vs = vectors[at : at + len(r.texts)]
                    at += len(r.texts)
                    try:
                        r = await self._store(r, vs, added_by, owner)
                    except UserError as exc:
                        r = exc
                yield name, r
            pending, size = [], 0

        for name, data in items:
            try:
                try:
                    raw = data() if callable(data) else data
                except OSError as exc:
                    raise UserError(f"Cannot read {name}: {exc.strerror or exc}.") from None
                ready = await self._prepare(tenant, channel, name, raw)
                if isinstance(ready, _Prepared) and any(
                    isinstance(r, _Prepared) and r.digest == ready.digest for _, r in pending
                ):  # the same bytes twice in one batch: store the first, then see the second as unchanged
                    async for out in flush():
                        yield out
                    ready = await self._prepare(tenant, channel, name, raw)
            except UserError as exc:
                ready = exc
            if isinstance(ready, _Prepared) and size and size + len(ready.texts) > batch_chunks:
                async for out in flush():
                    yield out
            pending.append((name, ready))
            size += len(ready.texts) if isinstance(ready, _Prepared) else 0
            if size >= batch_chunks:
                async for out in flush():
                    yield out
        async for out in flush():
            yield out

    async def _prepare(self, tenant: str, channel: str | None, name: str, data: bytes) -> _Prepared | IngestResult:
        """Validate, recognize unchanged bytes, extract and chunk: everything but the model."""
        name = _clean_name(name)
        if kind_of(name) is None or len(data) > self.settings.max_file_bytes or not data.strip():
            extract(name, data, self.limits)  # raises the right sentence without parsing anything
        digest = hashlib.sha256(data).hexdigest()
        same = await self._find_hash(tenant, channel, digest)
        if same is not None:
            return IngestResult("unchanged", same[0], name, same[2], same_as=same[1])
        extracted = await asyncio.to_thread(extract, name, data, self.limits)
        s = self.settings
        chunks = await asyncio.to_thread(chunk, extracted.blocks, max_tokens=s.chunk_tokens, overlap=s.chunk_overlap)
        return _Prepared(tenant=tenant, channel=channel, name=name, digest=digest, size=len(data),
                         kind=extracted.kind, pages=extracted.pages, chunks=chunks)

    async def _store(self, doc: _Prepared, vectors: list[list[float]], added_by: str, owner: str = "") -> IngestResult:
        """One transaction: the document row and all its chunks, replacing an older version."""
        dim = self.embedder.dim
        await self._ensure_index(dim)
        async with self.db.begin() as conn:
            row = (
                await conn.execute(
                    text(
                        """
                        INSERT INTO kb_documents (tenant, channel, name, content_hash, size_bytes, kind, pages, added_by, owner)
                        VALUES (:tenant, :channel, :name, :hash, :size, :kind, :pages, :added_by, :owner)
                        ON CONFLICT (tenant, (coalesce(channel, '')), name) DO UPDATE
                           SET content_hash = EXCLUDED.content_hash, size_bytes = EXCLUDED.size_bytes,
                               kind = EXCLUDED.kind, pages = EXCLUDED.pages, added_by = EXCLUDED.added_by,
                               owner = EXCLUDED.owner,
                               updated_at = now(), version = kb_documents.version + 1
                        RETURNING id, version
                        """
                    ),
                    dict(tenant=doc.tenant, channel=doc.channel, name=doc.name, hash=doc.digest, size=doc.size,
                         kind=doc.kind, pages=doc.pages, added_by=added_by[:200], owner=owner[:200]),
                )
            ).one()
            doc_id, version = row
            await conn.execute(text("DELETE FROM kb_chunks WHERE document_id = :d"), {"d": doc_id})
            await conn.execute(
                text(
                    """
                    INSERT INTO kb_chunks (document_id, tenant, channel, ord, text, heading, page, token_count, model, dim, embedding)
                    VALUES (:d, :tenant, :channel, :ord, :text, :heading, :page, :tc, :model, :dim, CAST(:e AS vector))
                    """
                ),
                [
                    dict(d=doc_id, tenant=doc.tenant, channel=doc.channel, ord=i, text=c.text, heading=c.heading,
                         page=c.page, tc=c.token_count, model=self.embedder.model, dim=dim, e=vector_literal(v))
                    for i, (c, v) in enumerate(zip(doc.chunks, vectors))
                ],
            )
        status = "replaced" if version > 1 else "added"
        log.info("kb %s %s (#%s) for %s: %d chunks", status, doc.name, doc_id, doc.tenant, len(doc.chunks))
        self._presence.pop(doc.tenant, None)  # the next mention sees the new document
        if version > 1:
            await self._changed(doc.tenant, doc_id)
        return IngestResult(status, doc_id, doc.name, len(doc.chunks), doc.pages)

    async def _find_hash(self, tenant: str, channel: str | None, digest: str):
        async with self.db.connect() as conn:
            return (
                await conn.execute(
                    text(
                        f"""
                        SELECT d.id, d.name, (SELECT count(*) FROM kb_chunks c WHERE c.document_id = d.id)
                        FROM kb_documents d
                        WHERE d.tenant = :tenant AND {_scope('d', channel)} AND d.content_hash = :h
                        ORDER BY d.id LIMIT 1
                        """
                    ),
                    dict(tenant=tenant, channel=channel, h=digest),
                )
            ).first()

    async def _ensure_index(self, dim: int) -> None:
        """HNSW needs a fixed dimension: one partial expression index per dimension in use."""
        if dim in self._indexed_dims:
            return
        if not 0 < dim <= 2000:
            raise UserError(f"Embeddings of {dim} dimensions cannot be indexed (pgvector HNSW allows up to 2000).")
        async with self._index_lock:
            async with self.db.begin() as conn:
                await conn.execute(
                    text(
                        f"CREATE INDEX IF NOT EXISTS ix_kb_chunks_embedding_{dim} ON kb_chunks "
                        f"USING hnsw ((embedding::vector({dim})) vector_cosine_ops) WHERE dim = {dim}"
                    )
                )
            self._indexed_dims.add(dim)

    # ------------------------------------------------------------------ retrieval

    async def search(self, *, tenant: str, query: str, k: int = 5, channel: str | None = None) -> list[Passage]:
        """The `k` best passages of `tenant`'s documents (tenant-wide ones, plus those of
        `channel` if given), best first; `Passage.score` is the ranking value (patterns.rag.ranking)."""
        if not query.strip() or not await self.has_documents(tenant):
            return []  # an empty knowledge base: no model to load for nothing
        [qv] = await self.embedder.embed([query])
        found = await self.search_vector(tenant=tenant, query=query, vector=qv, k=k, channel=channel)
        if not found:
            await self._check_model(tenant)
        return found

    async def _check_model(self, tenant: str) -> None:
        """Nothing found: say so if the stored vectors come from another embedding model."""
        async with self.db.connect() as conn:
            other = (
                await conn.execute(
                    text("SELECT model FROM kb_chunks WHERE tenant = :t AND (model <> :m OR dim <> :d) LIMIT 1"),
                    dict(t=tenant, m=self.embedder.model, d=self.embedder.dim),
                )
            ).scalar()
        if other is not None:
            raise UserError(
                f"The knowledge base was indexed with the embedding model {other}, not {self.embedder.model}: "
                "an admin should run `aibot kb reembed` after changing AIBOT_EMBEDDING_MODEL."
            )

    async def search_vector(
        self, *, tenant: str, query: str, vector: list[float], k: int = 5, channel: str | None = None,
        mode: str | None = None,
    ) -> list[Passage]:
        """Search with a precomputed query vector. `mode`: "dense", "fulltext", "rrf" or
        "hybrid" (default: hybrid if AIBOT_KB_HYBRID, else dense); `patterns.rag.ranking`
        says what each one's `score` is. Results are in descending score order."""
        mode = mode or ("hybrid" if self.settings.hybrid else "dense")
        if mode not in MODES:
            raise ValueError(f"unknown search mode {mode!r}")
        dim = len(vector)
        params = dict(tenant=tenant, channel=channel, q=vector_literal(vector), model=self.embedder.model, query=query)
        where = f"c.tenant = :tenant AND {_scope('c', channel)} AND c.dim = {dim} AND c.model = :model"
        depth = max(k, FUSION_DEPTH) if mode in ("rrf", "blend", "hybrid") else max(k, 3 * k)
        async with self.db.begin() as conn:
            if mode != "fulltext":
                await conn.execute(
                    text("SELECT set_config('hnsw.ef_search', :ef, true), set_config('hnsw.iterative_scan', 'relaxed_order', true)"),
                    {"ef": str(max(self.settings.ef_search, depth))},
                )
            if mode == "hybrid":
                scored = await self._hybrid(conn, where, dim, {**params, "depth": depth}, k)
            elif mode == "blend":
                scored = [(c.id, c.document_id, ranking.blend(c))
                          for c in await self._candidates(conn, where, dim, {**params, "depth": depth})]
            elif mode == "dense":
                rows = await self._dense(conn, where, dim, {**params, "depth": depth})
                scored = [(r[0], r[1], 1.0 - float(r[2])) for r in rows]
            elif mode == "rrf":
                rows = await self._dense(conn, where, dim, {**params, "depth": depth})
                docs = {r[0]: r[1] for r in rows}
                lexical = await self._fulltext(conn, "c.id = ANY(:ids)", {**params, "ids": list(docs), "depth": depth})
                fused = ranking.rrf([[r[0] for r in rows], [r[0] for r in lexical]], [1.0, FULLTEXT_WEIGHT])
                scored = [(i, docs[i], v) for i, v in fused.items()]
            else:
                scored = [(r[0], r[1], float(r[2])) for r in await self._fulltext(conn, where, {**params, "depth": depth})]
            chosen = ranking.choose(scored, k=k, per_document=self.settings.per_document)
            if not chosen:
                return []
            rows = (
                await conn.execute(
                    text(
                        """
                        SELECT c.id, c.document_id, d.name, c.text, c.heading, c.page
                        FROM kb_chunks c JOIN kb_documents d ON d.id = c.document_id
                        WHERE c.id = ANY(:ids) AND c.tenant = :tenant
                        """
                    ),
                    {"ids": [i for i, _ in chosen], "tenant": tenant},
                )
            ).all()
        by_id = {r[0]: r for r in rows}
        return [
            Passage(chunk_id=i, document_id=by_id[i][1], document=by_id[i][2], text=by_id[i][3],
                    score=score, heading=by_id[i][4], page=by_id[i][5])
            for i, score in chosen if i in by_id
        ]

    async def _dense(self, conn, where: str, dim: int, params: dict) -> list:
        """(id, document id, cosine distance) of the `depth` nearest chunks (HNSW)."""
        sql = text(
            f"""
            WITH {_nearest(where, dim)} SELECT id, document_id, dist FROM hits ORDER BY dist, id
            """
        )
        return (await conn.execute(sql, params)).all()

    async def _hybrid(self, conn, where: str, dim: int, params: dict, k: int) -> list[tuple[int, int, float]]:
        """(id, document id, score) of the dense top `depth` scored by `ranking.match`, then
        the best FEEDBACK_POOL (at least 2k) of them by `ranking.feedback`. Two statements:
        the dense candidates with the question's lexemes each holds and the tenant's word
        statistics; then the pool's cosines to the fed passages."""
        # setweight marks the question's lexemes and ts_filter keeps them: C functions over
        # the sorted tsvector, much cheaper than unnesting every lexeme of every candidate
        sql = text(
            f"""
            WITH {_nearest(where, dim)},
            question AS MATERIALIZED (
                SELECT coalesce(array_agg(q.lexeme), '{{}}') AS lexemes, array_agg(coalesce(l.chunks, 0)) AS holding
                FROM (SELECT DISTINCT lexeme FROM unnest(to_tsvector('english', :query))) q
                LEFT JOIN kb_lexemes l ON l.tenant = :tenant AND l.lexeme = q.lexeme
            )
            SELECT h.id, h.document_id, 1 - h.dist, length(c.tsv), m.found, m.counts,
                   question.lexemes, question.holding, s.chunks, s.words
            FROM hits h JOIN kb_chunks c ON c.id = h.id
            CROSS JOIN question
            LEFT JOIN kb_lexicon s ON s.tenant = :tenant
            CROSS JOIN LATERAL (
                SELECT array_agg(u.lexeme) AS found, array_agg(coalesce(array_length(u.positions, 1), 1)) AS counts
                FROM unnest(ts_filter(setweight(c.tsv, 'A', question.lexemes), '{{a}}')) u
            ) m
            """
        )
        rows = (await conn.execute(sql, params)).all()
        if not rows:
            return []
        lexicon = ranking.Lexicon(chunks=int(rows[0][8] or 0), words=int(rows[0][9] or 0),
                                  holding=dict(zip(rows[0][6] or (), rows[0][7] or ())))
        candidates = [ranking.Candidate(r[0], r[1], float(r[2]), words=dict(zip(r[4] or (), r[5] or ())),
                                        length=int(r[3] or 0)) for r in rows]
        first = {c.id: ranking.match(c, lexicon) for c in candidates}
        order = sorted(first, key=lambda i: (-first[i], i))
        pool = set(order[: max(ranking.FEEDBACK_POOL, 2 * k)])
        candidates = [c for c in candidates if c.id in pool]
        fed = order[: ranking.FEEDBACK]
        similar: dict[tuple[int, int], float] = {}
        if len(fed) >= 2:
            pairs = await conn.execute(_FEEDBACK_SQL[dim] if dim in _FEEDBACK_SQL else _feedback_sql(dim),
                                       {"ids": [c.id for c in candidates], "fed": fed})
            similar = {(r[0], r[1]): float(r[2]) for r in pairs.all()}
        final = ranking.anchor(ranking.feedback(candidates, first, similar, fed), first)
        return [(c.id, c.document_id, final[c.id]) for c in candidates]

    async def _candidates(self, conn, where: str, dim: int, params: dict) -> list[ranking.Candidate]:
        """The `depth` nearest chunks with their cosine and full-text rank, in one statement."""
        sql = text(
            f"""
            WITH {_nearest(where, dim)},
            words AS (SELECT {_OR_QUERY} AS tq)
            SELECT h.id, h.document_id, 1 - h.dist, CASE WHEN c.tsv @@ words.tq THEN ts_rank(c.tsv, words.tq) ELSE 0 END
            FROM hits h CROSS JOIN words JOIN kb_chunks c ON c.id = h.id
            """
        )
        return [ranking.Candidate(r[0], r[1], float(r[2]), float(r[3])) for r in (await conn.execute(sql, params)).all()]

    async def _fulltext(self, conn, where: str, params: dict) -> list:
        """(id, document id, ts_rank) of the chunks matching any of the query's lexemes,
        best first."""
        sql = text(
            f"""
            SELECT c.id, c.document_id, ts_rank(c.tsv, q.tq) AS rank
            FROM kb_chunks c, (SELECT {_OR_QUERY} AS tq) q
            WHERE {where} AND c.tsv @@ q.tq
            ORDER BY rank DESC, c.id LIMIT :depth
            """
        )
        return (await conn.execute(sql, params)).all()

    # ------------------------------------------------------------------ management

    async def has_any_documents(self) -> bool:
        """Whether any tenant has a document (then the embedding model is worth preloading)."""
        async with self.db.connect() as conn:
            return bool((await conn.execute(text("SELECT EXISTS (SELECT 1 FROM kb_documents)"))).scalar())

    async def has_documents(self, tenant: str) -> bool:
        """Whether `tenant` has any document: asked on every mention, so remembered per
        tenant (forgotten on ingest and remove here; another process's change is seen
        within PRESENCE_TTL seconds)."""
        known = self._presence.get(tenant)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        async with self.db.connect() as conn:
            found = bool((await conn.execute(text("SELECT EXISTS (SELECT 1 FROM kb_documents WHERE tenant = :t)"), {"t": tenant})).scalar())
        self._presence[tenant] = (found, time.monotonic() + PRESENCE_TTL)
        return found

    async def list(self, *, tenant: str, channel: str | None = None) -> list[DocumentInfo]:
        """Documents of `tenant` (all of them if channel is None, else tenant-wide + that channel's)."""
        scope = "TRUE" if channel is None else _scope("d", channel)
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        f"""
                        SELECT d.id, d.name, d.channel, (SELECT count(*) FROM kb_chunks c WHERE c.document_id = d.id),
                               d.size_bytes, d.added_by, d.created_at, d.updated_at, d.version, d.owner
                        FROM kb_documents d WHERE d.tenant = :tenant AND {scope} ORDER BY d.name, d.id
                        """
                    ),
                    dict(tenant=tenant, channel=channel),
                )
            ).all()
        return [DocumentInfo(*r) for r in rows]

    async def owner_of(self, *, tenant: str, document_id: int) -> str | None:
        """Who added a document of `tenant` ("" if added from the command line); None if there is none."""
        async with self.db.connect() as conn:
            return (
                await conn.execute(text("SELECT owner FROM kb_documents WHERE id = :id AND tenant = :tenant"),
                                   dict(id=document_id, tenant=tenant))
            ).scalar()

    async def remove(self, *, tenant: str, document_id: int, owner: str | None = None) -> str | None:
        """Delete a document of `tenant` (only if `owner` added it, when given) and its
        chunks; its name, or None if there is none."""
        mine = "" if owner is None else " AND owner = :owner"
        async with self.db.begin() as conn:
            name = (
                await conn.execute(
                    text(f"DELETE FROM kb_documents WHERE id = :id AND tenant = :tenant{mine} RETURNING name"),
                    dict(id=document_id, tenant=tenant, owner=owner),
                )
            ).scalar()
        self._presence.pop(tenant, None)
        if name is not None:
            await self._changed(tenant, document_id)
        return name

    async def _changed(self, tenant: str, document_id: int) -> None:
        for hook in self.on_change:
            try:
                await hook(tenant, [document_id])
            except Exception:  # the document change itself stands; cached answers expire anyway
                log.warning("could not drop cached answers of document %s", document_id, exc_info=True)

    async def export_tenant(self, tenant: str) -> list[dict]:
        """Every document of `tenant` with its text (its passages in order), JSON-ready."""
        async with self.db.connect() as conn:
            rows = (await conn.execute(text(
                """
                SELECT d.id, d.name, d.channel, d.added_by, d.owner, d.kind, d.pages, d.size_bytes, d.version,
                       d.created_at, d.updated_at,
                       coalesce((SELECT string_agg(c.text, E'\n\n' ORDER BY c.ord) FROM kb_chunks c WHERE c.document_id = d.id), '')
                FROM kb_documents d WHERE d.tenant = :tenant ORDER BY d.id
                """), dict(tenant=tenant))).all()
        keys = ("id", "name", "channel", "added_by", "owner", "kind", "pages", "size_bytes", "version",
                "created_at", "updated_at", "text")
        return [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in zip(keys, r)} for r in rows]

    async def delete_tenant(self, tenant: str) -> dict[str, int]:
        """Delete every document of `tenant` and its passages; how many of each."""
        async with self.db.begin() as conn:
            passages = (await conn.execute(text("DELETE FROM kb_chunks WHERE tenant = :t"), dict(t=tenant))).rowcount
            docs = (await conn.execute(text("DELETE FROM kb_documents WHERE tenant = :t"), dict(t=tenant))).rowcount
        return {"documents": docs, "passages": passages}

    async def reembed(self, *, everything: bool = False, batch: int = 256, progress=None) -> int:
        """Recompute the vectors made by another model (or all, with `everything`); returns
        how many chunks were updated. Each batch commits on its own."""
        model = self.embedder.model
        done = 0
        last_id = 0
        cond = "TRUE" if everything else "(c.model <> :model OR c.dim <> :dim)"
        async with self.db.connect() as conn:
            total = (await conn.execute(text(f"SELECT count(*) FROM kb_chunks c WHERE {cond}"), dict(model=model, dim=self.embedder.dim or 0))).scalar()
        while True:
            async with self.db.connect() as conn:
                rows = (
                    await conn.execute(
                        text(
                            f"""
                            SELECT c.id, d.name, c.text, c.heading, c.page, c.token_count
                            FROM kb_chunks c JOIN kb_documents d ON d.id = c.document_id
                            WHERE c.id > :last AND {cond} ORDER BY c.id LIMIT :n
                            """
                        ),
                        dict(last=last_id, n=batch, model=model, dim=self.embedder.dim or 0),
                    )
                ).all()
            if not rows:
                return done
            vectors = await self.embedder.embed([embed_text(r[1], Chunk(r[2], r[3], r[4], r[5])) for r in rows])
            dim = self.embedder.dim
            await self._ensure_index(dim)
            async with self.db.begin() as conn:
                await conn.execute(
                    text("UPDATE kb_chunks SET embedding = CAST(:e AS vector), model = :model, dim = :dim WHERE id = :id"),
                    [dict(id=r[0], e=vector_literal(v), model=model, dim=dim) for r, v in zip(rows, vectors)],
                )
            done += len(rows)
            last_id = rows[-1][0]
            if progress is not None:
                progress(done, total)


_FEEDBACK_SQL: dict = {}


def _feedback_sql(dim: int):
    """The cosine of each candidate to each fed passage (statement kept per dimension)."""
    _FEEDBACK_SQL[dim] = text(
        f"""
        SELECT c.id, f.id, 1 - (c.embedding::vector({dim}) <=> f.embedding::vector({dim}))
        FROM kb_chunks c, kb_chunks f WHERE c.id = ANY(:ids) AND f.id = ANY(:fed)
        """
    )
    return _FEEDBACK_SQL[dim]


def _scope(alias: str, channel: str | None) -> str:
    """Tenant-wide documents, plus the given channel's own."""
    if channel is None:
        return f"{alias}.channel IS NULL"
    return f"({alias}.channel IS NULL OR {alias}.channel = :channel)"


def _clean_name(name: str) -> str:
    """A document's name: a file name, or a relative path such as "a/README.md" (from
    `aibot kb add DIR`); never absolute, no "." or ".." parts, printable, ≤ 500 chars."""
    parts = [p.strip() for p in name.replace("\\", "/").split("/")]
    parts = ["".join(ch for ch in p if ch.isprintable()) for p in parts if p.strip() not in ("", ".", "..")]
    return "/".join(parts)[-500:].lstrip("/") or "untitled.txt"


def _nearest(where: str, dim: int) -> str:
    """The CTE `hits`: (id, document_id, cosine distance `dist`) of the `:depth` chunks
    nearest to `:q` among those `where` allows, through the HNSW index of dimension `dim`."""
    return f"""hits AS MATERIALIZED (
                SELECT c.id, c.document_id, c.embedding::vector({dim}) <=> CAST(:q AS vector({dim})) AS dist
                FROM kb_chunks c WHERE {where}
                ORDER BY c.embedding::vector({dim}) <=> CAST(:q AS vector({dim})) LIMIT :depth
            )"""
