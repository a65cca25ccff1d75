"""trusted devices, TOTP clock drift, TOTP parameters

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 08:00:00

Issue 13. ``trusted_devices`` holds "remember this device" tokens, hashed; a
token is good while its user's credential epoch and its account's
``trust_epoch`` are the ones it was given under (any change of factors or
password bumps the first; ``trusted_device_days`` set to 0 bumps the second,
so trust ended stays ended when the days grow again) and ``expires_at`` has
not passed. Each TOTP credential (and pending enrollment) keeps the algorithm,
digits and period it was enrolled with (NULL: SHA1 / 6 / 30, as before), and
the step offset of its last accepted code, and the future steps whose codes a
refusal named as "your clock is ahead" (never accepted afterwards).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column("trusted_device_days", sa.Integer(), nullable=False, server_default="30")
        )
        batch.add_column(sa.Column("trust_epoch", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("totp_algorithm", sa.String(8), nullable=False, server_default="SHA1")
        )
        batch.add_column(sa.Column("totp_digits", sa.Integer(), nullable=False, server_default="6"))
        batch.add_column(
            sa.Column("totp_period", sa.Integer(), nullable=False, server_default="30")
        )
    for table in ("credentials", "totp_enrollments"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("algorithm", sa.String(8), nullable=True))
            batch.add_column(sa.Column("digits", sa.Integer(), nullable=True))
            batch.add_column(sa.Column("period", sa.Integer(), nullable=True))
    with op.batch_alter_table("credentials") as batch:
        batch.add_column(sa.Column("last_offset", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("burned_steps", sa.JSON(), nullable=True))
    op.create_table(
        "trusted_devices",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("label", sa.String(255), nullable=False),
        sa.Column("client_addr", sa.String(64), nullable=True),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("last_used", sa.Float(), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("trust_epoch", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_trusted_devices_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name="pk_trusted_devices"),
        sa.UniqueConstraint("id", name="uq_trusted_devices_id"),
    )
    op.create_index("ix_trusted_devices_user_id", "trusted_devices", ["user_id"])
    op.create_index("ix_trusted_devices_expires_at", "trusted_devices", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_trusted_devices_expires_at", table_name="trusted_devices")
    op.drop_index("ix_trusted_devices_user_id", table_name="trusted_devices")
    op.drop_table("trusted_devices")
    with op.batch_alter_table("credentials") as batch:
        batch.drop_column("burned_steps")
        batch.drop_column("last_offset")
    for table in ("totp_enrollments", "credentials"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("period")
            batch.drop_column("digits")
            batch.drop_column("algorithm")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("totp_period")
        batch.drop_column("totp_digits")
        batch.drop_column("totp_algorithm")
        batch.drop_column("trust_epoch")
        batch.drop_column("trusted_device_days")
