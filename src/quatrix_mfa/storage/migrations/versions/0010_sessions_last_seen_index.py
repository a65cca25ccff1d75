"""an index on sessions.last_seen for the purge of idle sessions

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 18:30:00

Issue 14. The purge of expired sessions looks, once a minute, for sessions
past their expiry (indexed since 0001) or idle too long (``last_seen``, not
indexed). Without this index that look-up read every session: about 0.1 s of
a CPU at 1,000,000 sessions, each minute, beside the requests being served.
With it both sides of the condition are index searches. A session's
``last_seen`` is written at most once per ``touch_every``, so the index costs
the hot path next to nothing. Code at 0008 and 0009 works on this schema
unchanged: ``schema_compat`` is left as it is.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sessions_last_seen", "sessions", ["last_seen"])


def downgrade() -> None:
    op.drop_index("ix_sessions_last_seen", table_name="sessions")
