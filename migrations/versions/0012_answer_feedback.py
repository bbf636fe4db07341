"""Answer controls: 👍/👎 feedback on an answer, tied to its usage-ledger row.

An answer's model calls carry its id in `usage.extra->>'answer'` (indexed here, so a
button press finds its ledger row); feedback keeps that row's id, pattern and model so
stats can count ratings per pattern and model.

Revision ID: 0012
Revises: 0005
Create Date: 2026-11-26
"""
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_usage_answer ON usage ((extra->>'answer')) WHERE extra ? 'answer'")
    op.execute(
        """
        CREATE TABLE answer_feedback (
            id          bigserial PRIMARY KEY,
            created_at  timestamptz NOT NULL DEFAULT now(),
            answer      varchar(64) NOT NULL,
            usage_id    bigint REFERENCES usage (id) ON DELETE SET NULL,
            pattern     varchar(32) NOT NULL DEFAULT '',
            model       varchar(200) NOT NULL DEFAULT '',
            cache_hit   boolean NOT NULL DEFAULT false,
            platform    varchar(32) NOT NULL DEFAULT '',
            workspace   varchar(200) NOT NULL DEFAULT '',
            channel     varchar(200) NOT NULL DEFAULT '',
            user_id     varchar(200) NOT NULL,
            rating      smallint NOT NULL CHECK (rating IN (-1, 1)),
            reason      text,
            UNIQUE (answer, user_id)
        )
        """
    )
    op.execute("CREATE INDEX ix_answer_feedback_created ON answer_feedback (created_at)")


def downgrade() -> None:
    op.execute("DROP TABLE answer_feedback")
    op.execute("DROP INDEX ix_usage_answer")
