"""sessions remember the client address they were opened from, and hash one
secret at a time

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 10:00:00

An account that turns on (or narrows) its IP allow-list closes the sessions
opened from outside it, so a session keeps the address it was opened from.
Sessions from before have none, and count as outside every list.

``busy_until``: a session that is hashing a new secret (argon2, a PIN) claims
itself until then, so one session runs one hash at a time on any node.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("client_addr", sa.String(64), nullable=True))
        batch.add_column(sa.Column("busy_until", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("busy_until")
        batch.drop_column("client_addr")
