"""SqlStore: one SQLAlchemy connection per unit of work, repositories over it."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

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


class WriterQueue:
    """Queue SQLite writers so the write lock passes on at once, not by polling.

    SQLite lets one connection write at a time; the others wait in its busy
    handler, which sleeps and retries with growing pauses (up to 100 ms).
    Under concurrent writes those sleeps, not the work, made the latency.
    Writers of this store therefore queue on a thread lock and, across
    processes (``serve --workers N``), on an ``flock`` of a file beside the
    database; both wake the next writer the moment the lock is free.
    ``BEGIN IMMEDIATE`` with ``busy_timeout`` still guards against writers
    that do not queue here (another tool on the same file). PostgreSQL and
    in-memory databases need none of this (``path`` None).
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @contextmanager
    def hold(self) -> Iterator[None]:
        if self.path is None:
            yield
            return
        self._take(blocking=True)
        try:
            yield
        finally:
            self._give()

    @contextmanager
    def hold_if_free(self) -> Iterator[bool]:
        """Hold the writer lock if it can be had at once (True), or hold nothing
        (False) without waiting. Always False without a lock file."""
        held = self.path is not None and self._take(blocking=False)
        try:
            yield held
        finally:
            if held:
                self._give()

    def _take(self, blocking: bool) -> bool:
        """The thread lock, then (for the outermost holder) the file lock."""
        assert self.path is not None
        if not self._thread_lock.acquire(blocking=blocking):
            return False
        if self._depth == 0:
            try:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # another process writes now
                self._thread_lock.release()
                return False
            except BaseException:
                self._thread_lock.release()
                raise
        self._depth += 1
        return True

    def _give(self) -> None:
        if self._depth == 1 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._depth -= 1
        self._thread_lock.release()

    def close(self) -> None:
        with self._thread_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


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
        database = engine.url.database if self.is_sqlite else None
        on_disk = database and database != ":memory:" and not database.startswith("file:")
        self._writer = WriterQueue(f"{database}-writer.lock" if on_disk else None)

    @classmethod
    def from_url(cls, url: str, pool_size: int = 10) -> SqlStore:
        return cls(make_engine(url, pool_size))

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[SqlTransaction]:
        with self._writer.hold() if write else nullcontext(), self.engine.connect() as conn:
            if self.is_sqlite:
                conn.info["begin"] = "BEGIN IMMEDIATE" if write else "BEGIN"
            with conn.begin():
                yield SqlTransaction(conn, write)

    def writer_if_free(self) -> AbstractContextManager[bool]:
        """See :meth:`WriterQueue.hold_if_free` (always False on PostgreSQL)."""
        return self._writer.hold_if_free()

    def checkpoint(self) -> tuple[int, int] | None:
        """Copy SQLite's write-ahead log into the database file (a PASSIVE
        checkpoint: it waits for no reader and no writer, and writers go on
        appending meanwhile). Returns (frames in the log, frames copied), or
        None where there is no log (PostgreSQL, an in-memory database)."""
        if self._writer.path is None:
            return None
        connection = self.engine.raw_connection()
        try:
            # On the driver: through SQLAlchemy this would BEGIN IMMEDIATE first.
            row = connection.driver_connection.execute(  # type: ignore[union-attr]
                "PRAGMA wal_checkpoint(PASSIVE)"
            ).fetchone()
        finally:
            connection.close()
        _busy, frames, copied = row
        return int(frames), int(copied)

    def dispose(self) -> None:
        self.engine.dispose()
        self._writer.close()
