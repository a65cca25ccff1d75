"""reset links bound to an email, sealed mail secrets, audit retention index

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 10:00:00

``password_resets.email_hash`` binds a link to the address it was mailed to
(issue 17, defect 1). Links issued before this revision carry no hash and are
refused from now on: the user asks for a new one. ``outbox.secret`` and
``outbox.key_id`` hold a mail's link sealed, out of its body (defect 5);
bodies of mail already delivered are emptied here, and from now on at
delivery. ``ix_audit_log_at`` lets the audit retention purge find old rows
without scanning the table (defect 3).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing links get '' (which no email hashes to), then the default goes:
    # every new link must say where it was mailed.
    with op.batch_alter_table("password_resets") as batch:
        batch.add_column(
            sa.Column("email_hash", sa.String(length=64), nullable=False, server_default="")
        )
    with op.batch_alter_table("password_resets") as batch:
        batch.alter_column("email_hash", server_default=None)
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("secret", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("key_id", sa.String(length=32), nullable=True))
    outbox = sa.table("outbox", sa.column("body", sa.Text), sa.column("sent_at", sa.Float))
    op.execute(outbox.update().where(outbox.c.sent_at.is_not(None)).values(body=""))
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("key_id")
        batch.drop_column("secret")
    with op.batch_alter_table("password_resets") as batch:
        batch.drop_column("email_hash")
