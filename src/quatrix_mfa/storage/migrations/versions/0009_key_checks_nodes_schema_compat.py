"""key checks, nodes, schema compatibility

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 09:00:00

Issue 16. ``key_checks`` holds a keyed check value per key id (never the key)
and which key is active; ``nodes`` each running node's key ids and heartbeat;
``schema_compat`` the oldest code revision that works on this schema (code
older than that refuses to start, one version older keeps serving). Only new
tables: code at 0008 keeps working on this schema, so 0009 says "0008".
The check values are filled in by the first node or command that holds the
keys (a migration never sees the key file).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None
OLDEST_CODE_REVISION = "0008"


def upgrade() -> None:
    op.create_table(
        "key_checks",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("check_value", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name="pk_key_checks"),
    )
    op.create_table(
        "nodes",
        sa.Column("node_id", sa.String(128), nullable=False),
        sa.Column("key_ids", sa.Text(), nullable=False),
        sa.Column("heartbeat", sa.Float(), nullable=False),
        sa.Column("started", sa.Float(), nullable=False),
        sa.Column("code_revision", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("node_id", name="pk_nodes"),
    )
    compat = op.create_table(
        "schema_compat",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("oldest_code_revision", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_schema_compat"),
    )
    op.bulk_insert(compat, [{"id": 1, "oldest_code_revision": OLDEST_CODE_REVISION}])


def downgrade() -> None:
    op.drop_table("schema_compat")
    op.drop_table("nodes")
    op.drop_table("key_checks")
