"""SqlStore: one SQLAlchemy connection per unit of work, repositories over it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from quatrix_mfa.storage.engine import make_engine
from quatrix_mfa.storage.records import (
    SqlAuditRepository,
    SqlOutboxRepository,
    SqlResetRepository,
    SqlSessionRepository,
    SqlThrottleRepository,
)
from quatrix_mfa.storage.repositories import (
    SqlAccountRepository,
    SqlFactorRepository,
    SqlUserRepository,
)


class SqlTransaction:
    def __init__(self, conn: Connection, write: bool = True) -> None:
        self.conn = conn
        dialect = conn.dialect.name
        self.accounts = SqlAccountRepository(conn)
        # PostgreSQL: a writer locks the user rows it reads (SELECT ... FOR
        # UPDATE), so two admins editing one user cannot lose an update.
        # SQLite needs no row locks: BEGIN IMMEDIATE already serializes writers.
        self.users = SqlUserRepository(conn, lock=write and dialect == "postgresql")
        self.factors = SqlFactorRepository(conn)
        self.sessions = SqlSessionRepository(conn)
        self.throttle = SqlThrottleRepository(conn, dialect)
        self.audit = SqlAuditRepository(conn)
        self.outbox = SqlOutboxRepository(conn)
        self.resets = SqlResetRepository(conn)


class SqlStore:
    """The :class:`quatrix_mfa.core.ports.Store` on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"

    @classmethod
    def from_url(cls, url: str, pool_size: int = 10) -> SqlStore:
        return cls(make_engine(url, pool_size))

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[SqlTransaction]:
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.info["begin"] = "BEGIN IMMEDIATE" if write else "BEGIN"
            with conn.begin():
                yield SqlTransaction(conn, write)

    def dispose(self) -> None:
        self.engine.dispose()
