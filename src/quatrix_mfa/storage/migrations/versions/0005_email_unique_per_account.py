"""emails unique per account; across the service only among sign-in identities;
links that confirm a change of email

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 10:00:00

Issue 17, item 7: with emails unique across the service, an administrator
learned from code 31 that an email existed in another account (and could
reserve it there first). An email is now unique within an account, and across
the service only among the users who have set a password (a partial unique
index): login stays by email alone, so one email signs in as one user.

``password_resets.new_email``: a link mailed to a new address to confirm the
change of a signed-in user's email carries that address.

Downgrade restores the service-wide unique email; while two users share an
email (which only this revision allows) it refuses before changing anything,
naming them. Pending email changes are dropped with their column.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_SIGN_IN = sa.text("password_hash IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_email", type_="unique")
        batch.create_unique_constraint("uq_users_email_account_id", ["email", "account_id"])
    op.create_index(
        "ix_users_sign_in_email",
        "users",
        ["email"],
        unique=True,
        sqlite_where=_SIGN_IN,
        postgresql_where=_SIGN_IN,
    )
    with op.batch_alter_table("password_resets") as batch:
        batch.add_column(sa.Column("new_email", sa.String(254), nullable=True))


def downgrade() -> None:
    shared = op.get_bind().execute(
        sa.text("SELECT email FROM users GROUP BY email HAVING COUNT(*) > 1 ORDER BY email")
    )
    emails = [row.email for row in shared]
    if emails:
        raise RuntimeError(
            "cannot downgrade below 0005: these emails belong to more than one user "
            f"(give them distinct emails first): {', '.join(emails)}"
        )
    op.execute("DELETE FROM password_resets WHERE new_email IS NOT NULL")
    with op.batch_alter_table("password_resets") as batch:
        batch.drop_column("new_email")
    op.drop_index("ix_users_sign_in_email", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_email_account_id", type_="unique")
        batch.create_unique_constraint("uq_users_email", ["email"])
