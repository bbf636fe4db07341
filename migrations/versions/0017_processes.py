"""The processes serving one database, each with a lease its heartbeat renews and the
workspaces it is writing to: how many share each workspace's rate limits
(`bot.core.peers`, Slack's write budgets).

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-26
"""
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE bot_processes (
            owner        varchar(300) PRIMARY KEY,
            platforms    varchar(32)[] NOT NULL,
            active       text[] NOT NULL DEFAULT '{}',
            started_at   timestamptz NOT NULL DEFAULT now(),
            lease_until  timestamptz NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE bot_processes")
