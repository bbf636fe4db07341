"""The answer journal: every accepted answer's progress (received → answering →
delivered or closed), the message as the router got it, the platform messages written so
far, and which process owns it until when (a lease its heartbeat renews), so that an
answer cut off by a crash (kill -9, OOM) is completed or closed by the next process.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26
"""
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE answer_journal (
            key          varchar(300) PRIMARY KEY,
            created_at   timestamptz NOT NULL DEFAULT now(),
            updated_at   timestamptz NOT NULL DEFAULT now(),
            platform     varchar(32) NOT NULL,
            tenant       varchar(200) NOT NULL DEFAULT '',
            channel      varchar(200) NOT NULL DEFAULT '',
            action       varchar(16) NOT NULL,
            incoming     jsonb NOT NULL,
            state        varchar(16) NOT NULL DEFAULT 'received'
                         CHECK (state IN ('received', 'answering', 'delivered', 'closed')),
            messages     jsonb NOT NULL DEFAULT '[]',
            native       boolean NOT NULL DEFAULT false,
            owner        varchar(200) NOT NULL,
            lease_until  timestamptz NOT NULL,
            attempts     smallint NOT NULL DEFAULT 0
        )
        """
    )
    # what recovery scans (expired open rows) and what a heartbeat renews (a process's open rows)
    op.execute("CREATE INDEX ix_answer_journal_open ON answer_journal (lease_until) "
               "WHERE state IN ('received', 'answering')")
    op.execute("CREATE INDEX ix_answer_journal_owner ON answer_journal (owner) "
               "WHERE state IN ('received', 'answering')")
    op.execute("CREATE INDEX ix_answer_journal_created ON answer_journal (created_at)")


def downgrade() -> None:
    op.execute("DROP TABLE answer_journal")
