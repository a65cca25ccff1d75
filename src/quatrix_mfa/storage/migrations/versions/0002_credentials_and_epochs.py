"""credentials table, credential epochs, authentication records

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 23:10:00

TOTP seeds (``totp_secrets``) and PIN hashes (``users.pin_hash``) move into one
``credentials`` table that can hold several per user and kind; users get a
credential epoch and sessions the epoch they were made under, their kind,
``auth_time`` and the factors proven. Existing rows are carried over.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    credentials = op.create_table(
        "credentials",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=True),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("label", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_credentials_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
    )
    assert credentials is not None
    op.create_index("ix_credentials_user_id_kind", "credentials", ["user_id", "kind"])
    conn = op.get_bind()
    totp = sa.table(
        "totp_secrets",
        sa.column("user_id", sa.String),
        sa.column("credential_id", sa.String),
        sa.column("ciphertext", sa.LargeBinary),
        sa.column("key_id", sa.String),
        sa.column("created", sa.Float),
        sa.column("last_step", sa.BigInteger),
    )
    users = sa.table(
        "users",
        sa.column("id", sa.String),
        sa.column("pin_hash", sa.String),
        sa.column("modified", sa.Float),
    )
    rows = [
        {
            "id": r.credential_id,
            "user_id": r.user_id,
            "kind": "totp",
            "secret": bytes(r.ciphertext),
            "key_id": r.key_id,
            "created": r.created,
            "last_step": r.last_step,
        }
        for r in conn.execute(sa.select(totp))
    ]
    rows += [
        {
            "id": str(uuid.uuid4()),
            "user_id": r.id,
            "kind": "pin",
            "secret": r.pin_hash.encode("ascii"),
            "key_id": None,
            "created": r.modified,
            "last_step": None,
        }
        for r in conn.execute(sa.select(users).where(users.c.pin_hash.is_not(None)))
    ]
    if rows:
        conn.execute(sa.insert(credentials), rows)
    op.drop_table("totp_secrets")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("pin_hash")
        batch.add_column(
            sa.Column("credential_epoch", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("epoch", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="api"))
        batch.add_column(sa.Column("auth_time", sa.Float(), nullable=False, server_default="0"))
        # Every session so far began with a correct password.
        batch.add_column(
            sa.Column("factors", sa.String(64), nullable=False, server_default="password")
        )
    # A session from before knows when it was made, not how: its creation
    # stands for its auth_time (its absolute expiry is kept as stored).
    sessions = sa.table(
        "sessions", sa.column("created", sa.Float), sa.column("auth_time", sa.Float)
    )
    conn.execute(sa.update(sessions).values(auth_time=sessions.c.created))


# migrate --to refuses a path through this revision before touching anything.
downgradable = False


def downgrade() -> None:
    raise NotImplementedError("0002 has no downgrade: restore the backup taken before upgrading")
