"""staged 2FA (a deadline and its rollout stage), self-service recovery

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 04:00:00

Issue 12: an account forcing 2FA may give its users until ``mfa_enroll_by``;
``mfa_stage`` records how far the rollout went (reminders mailed, sessions
ended), moved forward by one conditional UPDATE so two nodes never both act.
``mfa_recoveries`` holds lost-device recoveries, one open per user.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("mfa_enroll_by", sa.Float(), nullable=True))
        batch.add_column(sa.Column("mfa_stage", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("mfa_self_recovery", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    op.create_table(
        "mfa_recoveries",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("ready_at", sa.Float(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("closed_at", sa.Float(), nullable=True),
        sa.Column("approved_by", sa.String(36), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_mfa_recoveries_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_hash", name="pk_mfa_recoveries"),
    )
    op.create_index("ix_mfa_recoveries_account_id", "mfa_recoveries", ["account_id"])
    open_only = sa.text("state = 'open'")
    op.create_index(
        "ix_mfa_recoveries_open_user",
        "mfa_recoveries",
        ["user_id"],
        unique=True,
        sqlite_where=open_only,
        postgresql_where=open_only,
    )


def downgrade() -> None:
    op.drop_index("ix_mfa_recoveries_open_user", table_name="mfa_recoveries")
    op.drop_index("ix_mfa_recoveries_account_id", table_name="mfa_recoveries")
    op.drop_table("mfa_recoveries")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("mfa_self_recovery")
        batch.drop_column("mfa_stage")
        batch.drop_column("mfa_enroll_by")
