"""Many workspaces: document owners, per-workspace/per-channel settings and their audit
log, Slack installations (tokens encrypted by the app) and OAuth states, and the
lifecycle of a tenant that uninstalled the bot (data deleted after a grace period).

Revision ID: 0010
Revises: 0005
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def _now(name: str = "created_at") -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    # who added a document (platform user id): members may remove their own
    op.add_column("kb_documents", sa.Column("owner", sa.String(200), nullable=False, server_default=""))

    op.create_table(
        "workspace_settings",
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(200), nullable=False, server_default=""),  # "": the whole workspace
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False, server_default=""),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("platform", "tenant", "channel", "key"),
    )
    op.create_table(
        "settings_audit",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(200), nullable=False, server_default=""),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),  # NULL: reset to the default
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("actor_name", sa.String(200), nullable=False, server_default=""),
        _now("at"),
    )
    op.create_index("ix_settings_audit_tenant", "settings_audit", ["platform", "tenant", "at"])

    op.create_table(
        "slack_installations",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("enterprise_id", sa.String(32), nullable=True),
        sa.Column("team_id", sa.String(32), nullable=True),
        sa.Column("user_id", sa.String(32), nullable=True),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("has_bot", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("secret", sa.Text(), nullable=False),  # the whole installation, Fernet-encrypted
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_slack_installations_team", "slack_installations",
                    ["client_id", "enterprise_id", "team_id", "installed_at"])
    op.create_table(
        "slack_oauth_states",
        sa.Column("state", sa.String(200), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )

    op.create_table(
        "tenant_lifecycle",
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # removed, deleted
        sa.Column("reason", sa.String(100), nullable=False, server_default=""),
        _now("since"),
        sa.Column("delete_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("report", sa.Text(), nullable=True),  # what was deleted
        sa.PrimaryKeyConstraint("platform", "tenant"),
    )


def downgrade() -> None:
    op.drop_table("tenant_lifecycle")
    op.drop_table("slack_oauth_states")
    op.drop_index("ix_slack_installations_team", "slack_installations")
    op.drop_table("slack_installations")
    op.drop_index("ix_settings_audit_tenant", "settings_audit")
    op.drop_table("settings_audit")
    op.drop_table("workspace_settings")
    op.drop_column("kb_documents", "owner")
