"""indexes for the admin console: users paged by email, audit rows by account

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 03:00:00

The admin's user list pages by (email, id) within an account, and the audit
page reads an account's rows newest first; both seek on an index from the
last row shown (keyset paging), so a deep page costs what the first does.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_users_account_id_email_id", "users", ["account_id", "email", "id"])
    op.create_index("ix_audit_log_account_id_id", "audit_log", ["account_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_account_id_id", table_name="audit_log")
    op.drop_index("ix_users_account_id_email_id", table_name="users")
