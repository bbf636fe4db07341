"""Answer controls across processes: what Stop and Regenerate need of an answer, shared
by every process on the database (`bot.core.answer_store`).

One small row per streamed answer: where it is, who asked, its first message (a 🛑
reaction names the message, not the answer), the question (for Regenerate, from any
process), whether it is still being written and whether someone asked it to stop (the
owning process hears that through NOTIFY, and checks the flag after a reconnect). Rows go
after AIBOT_ANSWER_RETENTION_DAYS, and with their tenant.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26
"""
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE answer_controls (
            id              varchar(64) PRIMARY KEY,
            created_at      timestamptz NOT NULL DEFAULT now(),
            platform        varchar(32) NOT NULL,
            workspace       varchar(200) NOT NULL,
            channel         varchar(200) NOT NULL,
            message         varchar(200),
            asker           varchar(200) NOT NULL,
            question        jsonb NOT NULL,
            running         boolean NOT NULL DEFAULT true,
            stop_requested  timestamptz,
            finished_at     timestamptz
        )
        """
    )
    op.execute("CREATE INDEX ix_answer_controls_message ON answer_controls (platform, channel, message)")
    op.execute("CREATE INDEX ix_answer_controls_created ON answer_controls (created_at)")
    op.execute("CREATE INDEX ix_answer_controls_tenant ON answer_controls (platform, workspace)")


def downgrade() -> None:
    op.execute("DROP TABLE answer_controls")
