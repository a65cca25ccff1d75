"""Alembic environment: one history for SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from quatrix_mfa.storage.engine import make_engine
from quatrix_mfa.storage.tables import metadata

# Any constant: every node that migrates takes the same PostgreSQL advisory lock.
_MIGRATION_LOCK = 7_310_420_001


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = make_engine(url, pool_size=1)
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Several nodes starting at once: one migrates, the others wait here.
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
            connection.commit()
        if connection.dialect.name == "sqlite":
            # A batch migration recreates a table (SQLite cannot drop a column
            # in place): with foreign keys on, dropping the old ``users`` would
            # cascade to every row that refers to it. Off outside a transaction
            # (SQLite ignores the pragma inside one), for this connection only.
            connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
                connection.commit()
    engine.dispose()


run_migrations_online()
