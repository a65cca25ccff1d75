"""Alembic environment: one history for SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from quatrix_mfa.storage.engine import make_engine, sqlite_file
from quatrix_mfa.storage.migrate import MIGRATION_LOCK, sqlite_migration_queue
from quatrix_mfa.storage.tables import metadata


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = make_engine(url, pool_size=1)
    with sqlite_migration_queue(sqlite_file(engine.url)), engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Several nodes starting at once: one migrates, the others wait here.
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
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
                # Alembic reads the version once, then runs each migration in a
                # transaction of its own on SQLite. Between two of them the
                # write lock was free: another node read the version there,
                # ran the rest, and this one then ran them again ("table
                # already exists"). One transaction for the whole run (SQLite's
                # DDL is transactional) holds the lock from that read to the
                # end, and a crash leaves the schema as it was.
                transactional_ddl=True,
            )
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
                connection.commit()
    engine.dispose()


run_migrations_online()
