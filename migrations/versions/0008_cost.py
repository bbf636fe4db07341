"""Cost: provider-cached input tokens and cache savings in the ledger; the semantic answer cache.

Revision ID: 0008
Revises: 0005
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # prompt tokens the provider read from its prompt cache (priced at the cached rate)
    op.add_column("usage", sa.Column("cached_tokens", sa.Integer(), nullable=False, server_default="0"))
    # a cache hit: what the model call it replaced would have cost
    op.add_column("usage", sa.Column("saved_usd", sa.Numeric(14, 8), nullable=False, server_default="0"))
    # budgets and per-tenant reports read a workspace's recent rows
    op.create_index("ix_usage_workspace_created_at", "usage", ["workspace", "created_at"])

    op.create_table(
        "answer_cache",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),  # chat, rag, summary
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("prompt_version", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False, server_default=""),  # rag: hash of the passages used
        sa.Column("norm_key", sa.String(64), nullable=False),  # hash of the normalised question / text
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("embed_model", sa.String(200), nullable=True),
        sa.Column("dim", sa.Integer(), nullable=True),
        sa.Column("embedding", postgresql.ARRAY(sa.Float()), nullable=True),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("completion_tokens", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("documents", postgresql.ARRAY(sa.BigInteger()), nullable=True),  # rag: the documents it cites
        sa.Column("hits", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    # the embedding is a pgvector column of any dimension (like kb_chunks), indexed per dimension
    op.execute("ALTER TABLE answer_cache ALTER COLUMN embedding TYPE vector USING NULL")
    op.create_index("ix_answer_cache_key", "answer_cache", ["tenant", "kind", "model", "prompt_version", "scope"])
    op.create_index("ix_answer_cache_norm", "answer_cache", ["tenant", "kind", "norm_key"])
    op.create_index("ix_answer_cache_expires_at", "answer_cache", ["expires_at"])
    op.create_index("ix_answer_cache_documents", "answer_cache", ["documents"], postgresql_using="gin")
    op.execute(
        "CREATE INDEX ix_answer_cache_embedding_384 ON answer_cache "
        "USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE dim = 384"
    )


def downgrade() -> None:
    op.drop_table("answer_cache")
    op.drop_index("ix_usage_workspace_created_at", table_name="usage")
    op.drop_column("usage", "saved_usd")
    op.drop_column("usage", "cached_tokens")
