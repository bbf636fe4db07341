"""Batch pattern: digest schedules and runs, bulk jobs and their items.

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def _now():
    return sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "digest_schedules",
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(200), nullable=False),
        sa.Column("at_time", sa.String(5), nullable=False),  # HH:MM local time
        sa.Column("tz", sa.String(64), nullable=False),
        sa.Column("weekdays", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("active_since", sa.DateTime(timezone=True), nullable=False),  # no period before this runs
        sa.Column("last_period", sa.String(10), nullable=True),  # local date of the last handled period
        sa.Column("last_until", sa.DateTime(timezone=True), nullable=True),  # messages up to here are digested
        sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
        _now(),
        sa.PrimaryKeyConstraint("platform", "tenant", "channel"),
    )
    op.create_table(
        "digest_runs",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(200), nullable=False),
        sa.Column("period", sa.String(10), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # running, posted, quiet, skipped, failed
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False, server_default=""),
        sa.Column("messages", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("posted_id", sa.String(200), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        _now(),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("platform", "tenant", "channel", "period", name="uq_digest_runs_period"),
    )
    op.create_table(
        "batch_jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),  # queued, running, done
        sa.Column("mode", sa.String(16), nullable=False, server_default="direct"),  # direct, provider
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(300), nullable=False, server_default=""),
        sa.Column("provider_batch_id", sa.String(200), nullable=True),
        sa.Column("provider_status", sa.String(32), nullable=True),
        _now(),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "batch_items",
        sa.Column("job_id", sa.String(40), sa.ForeignKey("batch_jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("instruction", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),  # pending, done, failed
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),  # backoff after a 429/5xx
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.String(300), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("completion_tokens", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("extra", postgresql.JSONB(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "item_id"),
    )
    op.create_index("ix_batch_items_pending", "batch_items", ["status", "job_id", "seq"])


def downgrade() -> None:
    op.drop_table("batch_items")
    op.drop_table("batch_jobs")
    op.drop_table("digest_runs")
    op.drop_table("digest_schedules")
