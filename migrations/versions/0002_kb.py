"""Knowledge base: documents and their chunks (text, full-text vector, embedding).

The embedding column is an untyped `vector` with the model name and dimension stored
next to it, so vectors of another model can coexist during `aibot kb reembed`. HNSW
needs a fixed dimension, so the index is an expression index per dimension, partial on
`dim` (this migration creates the 384-d one of the default local model; the app creates
the index for another dimension the first time it stores such vectors).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE kb_documents (
            id          bigserial PRIMARY KEY,
            tenant      varchar(200) NOT NULL,
            channel     varchar(200),
            name        varchar(500) NOT NULL,
            content_hash char(64) NOT NULL,
            size_bytes  bigint NOT NULL,
            kind        varchar(16) NOT NULL,
            pages       integer,
            added_by    varchar(200) NOT NULL DEFAULT '',
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now(),
            version     integer NOT NULL DEFAULT 1
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX ux_kb_documents_name ON kb_documents (tenant, (coalesce(channel, '')), name)")
    op.execute("CREATE INDEX ix_kb_documents_hash ON kb_documents (tenant, content_hash)")
    op.execute(
        """
        CREATE TABLE kb_chunks (
            id          bigserial PRIMARY KEY,
            document_id bigint NOT NULL REFERENCES kb_documents(id) ON DELETE CASCADE,
            tenant      varchar(200) NOT NULL,
            channel     varchar(200),
            ord         integer NOT NULL,
            text        text NOT NULL,
            heading     text,
            page        integer,
            token_count integer NOT NULL,
            tsv         tsvector GENERATED ALWAYS AS (to_tsvector('english', coalesce(heading, '') || ' ' || text)) STORED,
            model       varchar(200) NOT NULL,
            dim         integer NOT NULL,
            embedding   vector NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX ix_kb_chunks_document ON kb_chunks (document_id, ord)")
    op.execute("CREATE INDEX ix_kb_chunks_tenant ON kb_chunks (tenant)")
    op.execute("CREATE INDEX ix_kb_chunks_tsv ON kb_chunks USING gin (tsv)")
    op.execute(
        "CREATE INDEX ix_kb_chunks_embedding_384 ON kb_chunks "
        "USING hnsw ((embedding::vector(384)) vector_cosine_ops) WITH (m = 16, ef_construction = 64) WHERE dim = 384"
    )


def downgrade() -> None:
    op.execute("DROP TABLE kb_chunks")
    op.execute("DROP TABLE kb_documents")
