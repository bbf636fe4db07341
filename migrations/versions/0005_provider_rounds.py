"""Batch pattern: provider jobs summarize long items in rounds, one Batch API batch per round.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # the item's map-reduce round, and the text that round summarizes (NULL: the item's own text)
    op.add_column("batch_items", sa.Column("round", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("batch_items", sa.Column("stage_text", sa.Text(), nullable=True))
    # the round of the job's current provider batch: which pending items that batch answers
    op.add_column("batch_jobs", sa.Column("provider_round", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("batch_jobs", "provider_round")
    op.drop_column("batch_items", "stage_text")
    op.drop_column("batch_items", "round")
