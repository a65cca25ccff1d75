"""SqlStore: one SQLAlchemy connection per unit of work, repositories over it."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cached_property
from typing import Any, NoReturn, TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import Connection, Engine

from quatrix_mfa import logs, metrics
from quatrix_mfa.core.errors import StoreUnavailable
from quatrix_mfa.storage.accounts import SqlAccountRepository
from quatrix_mfa.storage.audit import SqlAuditRepository
from quatrix_mfa.storage.credentials import SqlCredentialRepository
from quatrix_mfa.storage.deadline import Deadlines
from quatrix_mfa.storage.devices import SqlTrustedDeviceRepository
from quatrix_mfa.storage.engine import RESTART_PAGES, make_engine, sqlite_file
from quatrix_mfa.storage.outage import outage_reason, wrapped_outage
from quatrix_mfa.storage.outbox import SqlOutboxRepository
from quatrix_mfa.storage.recoveries import SqlRecoveryRepository
from quatrix_mfa.storage.resets import SqlResetRepository
from quatrix_mfa.storage.sessions import SqlSessionRepository
from quatrix_mfa.storage.throttle import SqlThrottleRepository
from quatrix_mfa.storage.users import SqlUserRepository

T = TypeVar("T")


# A connection the server closed fails its first statement within
# milliseconds; a try that failed later than this is not made again.
RETRY_WITHIN_SECONDS = 0.25


class _UnpingedConnectionLost(StoreUnavailable):
    """A connection used without its ping failed: made again, with the ping."""


def _drop_if_broken(conn: Connection, error: Exception) -> None:
    """Invalidate ``conn`` if ``error`` is an outage. SQLAlchemy does not see
    the driver's errors of prepared statements (storage/prepared.py), and a
    connection an outage broke must not go back to the pool (pool_pre_ping
    would find it, but only on its next use)."""
    if outage_reason(error) is not None and not conn.invalidated:
        conn.invalidate()


def _raise_as_unavailable(
    error: Exception, lost: type[StoreUnavailable] = StoreUnavailable
) -> NoReturn:
    """Raise ``error`` as callers of the store see it: an outage
    (storage/outage.py) as ``lost``, a :class:`StoreUnavailable` that core
    answers with 503; anything else, a fault, as it is."""
    reason = outage_reason(error)
    if reason is None:
        raise error
    raise lost(reason) from error


def _passive_checkpoint(driver: Any) -> tuple[int, int]:
    _busy, frames, copied = driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(frames), int(copied)


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
        # Threads blocked in hold(); hold_if_free() does not pass them by.
        self._waiting = 0
        self._count_lock = threading.Lock()

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
        # A writer queued in hold() goes first. Else the event loop, which
        # tries on every check, could take the lock each time it is free for
        # an instant, before a woken thread gets the CPU back, and a queued
        # writer (a login's, or one that waited out SqlStore.checkpoint) waits on.
        held = self.path is not None and not self._waiting and self._take(blocking=False)
        try:
            yield held
        finally:
            if held:
                self._give()

    @property
    def waiting(self) -> int:
        """Threads of this process queued in :meth:`hold` right now."""
        return self._waiting

    def _take(self, blocking: bool) -> bool:
        """The thread lock, then (for the outermost holder) the file lock."""
        assert self.path is not None
        if blocking:
            with self._count_lock:  # += is no atomic step between threads
                self._waiting += 1
            try:
                self._thread_lock.acquire()
            finally:
                with self._count_lock:
                    self._waiting -= 1
        elif not self._thread_lock.acquire(blocking=False):
            return False
        if self._depth == 0:
            try:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # another process writes now
                self._thread_lock.release()
                return False
            except OSError as error:  # the lock file: a read-only or full disk
                self._thread_lock.release()
                raise StoreUnavailable(wrapped_outage(error)) from error
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
    """The repositories over one connection's transaction, each made when first
    used: the session check, the hottest path, needs one of the ten."""

    def __init__(self, conn: Connection, write: bool = True) -> None:
        self.conn = conn
        # PostgreSQL: a writer locks the user and account rows it reads
        # (SELECT ... FOR UPDATE), so two admins editing one user cannot lose
        # an update. SQLite needs no row locks: BEGIN IMMEDIATE already
        # serializes writers.
        self._lock_rows = write and conn.dialect.name == "postgresql"

    @cached_property
    def accounts(self) -> SqlAccountRepository:
        return SqlAccountRepository(self.conn, lock=self._lock_rows)

    @cached_property
    def users(self) -> SqlUserRepository:
        return SqlUserRepository(self.conn, lock=self._lock_rows)

    @cached_property
    def credentials(self) -> SqlCredentialRepository:
        return SqlCredentialRepository(self.conn)

    @cached_property
    def sessions(self) -> SqlSessionRepository:
        return SqlSessionRepository(self.conn)

    @cached_property
    def throttle(self) -> SqlThrottleRepository:
        return SqlThrottleRepository(self.conn, self.conn.dialect.name)

    @cached_property
    def audit(self) -> SqlAuditRepository:
        return SqlAuditRepository(self.conn)

    @cached_property
    def outbox(self) -> SqlOutboxRepository:
        return SqlOutboxRepository(self.conn)

    @cached_property
    def resets(self) -> SqlResetRepository:
        return SqlResetRepository(self.conn)

    @cached_property
    def recoveries(self) -> SqlRecoveryRepository:
        return SqlRecoveryRepository(self.conn)

    @cached_property
    def devices(self) -> SqlTrustedDeviceRepository:
        return SqlTrustedDeviceRepository(self.conn)

    def used(self, name: str) -> bool:
        """Whether the repository ``name`` was made (and so may hold news)."""
        return name in self.__dict__


def _committed(tx: SqlTransaction) -> None:
    """Count and log what a transaction did, once it is committed: a rolled-back
    login attempt neither happened in the metrics nor in the security log."""
    events = tx.audit.appended if tx.used("audit") else ()
    if events:
        metrics.count_events(events)
        logs.security_events(events)
    if tx.used("sessions"):
        for state in tx.sessions.opened:
            metrics.SESSIONS_OPENED.labels(state).inc()
        if tx.sessions.purged_expired:
            metrics.SESSIONS_CLOSED.labels(metrics.EXPIRED).inc(tx.sessions.purged_expired)
    if tx.used("outbox"):
        for change in tx.outbox.changes:
            metrics.MAIL.labels(change).inc()


class SqlStore:
    """The :class:`quatrix_mfa.core.ports.Store` on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine, deadlines: Deadlines | None = None) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        # PostgreSQL's client-side bound (storage/deadline.py); none on SQLite,
        # a file on this machine, whose waits are its own busy timeout.
        self._deadlines = None if self.is_sqlite else deadlines
        database = sqlite_file(engine.url)
        self._writer = WriterQueue(None if database is None else f"{database}-writer.lock")
        # SQLite: the event loop's own connection for the reads it runs
        # (``run``), kept between them. Taking one from the pool and giving it
        # back cost as much as the session check's query (bench/analysis.md).
        self._loop_thread: int | None = None
        self._loop_reader: Connection | None = None

    @classmethod
    def from_url(cls, url: str, pool_size: int = 10, timeout: float | None = None) -> SqlStore:
        """A store over ``url``; ``timeout``: the most seconds a unit of work
        waits for PostgreSQL (pool, ping, statements, commit), None for none
        beyond the engine's fixed timeouts (the command line's long work)."""
        deadlines = None if timeout is None else Deadlines(timeout)
        return cls(make_engine(url, pool_size, deadlines), deadlines)

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[SqlTransaction]:
        """One unit of work, committed at the end or rolled back as a whole.

        A database that cannot answer now (storage/outage.py) surfaces as
        :class:`StoreUnavailable`: the transaction rolled back, so nothing of
        the unit of work is left half done, and the client may try again.
        On PostgreSQL the unit of work has the store's timeout for all of it,
        from here: one the database does not answer in time fails the same way."""
        deadline = nullcontext() if self._deadlines is None else self._deadlines.within()
        try:
            with (
                self._writer.hold() if write else nullcontext(),
                deadline,
                self._connect(write) as conn,
            ):
                if self.is_sqlite:
                    conn.info["begin"] = "BEGIN IMMEDIATE" if write else "BEGIN"
                try:
                    with conn.begin():
                        tx = SqlTransaction(conn, write)
                        yield tx
                except Exception as error:
                    _drop_if_broken(conn, error)
                    raise
        except Exception as error:  # SQLAlchemy's or, from prepared statements, the driver's
            _raise_as_unavailable(error)
        _committed(tx)  # after the writer lock is given up: nothing waits on a log line

    def single_statement_read(self, work: Callable[[SqlTransaction], T]) -> T:
        """See :meth:`quatrix_mfa.core.ports.Store.single_statement_read`.

        On SQLite's loop reader the statement runs without ``BEGIN`` and
        ``COMMIT``: the driver is in autocommit (storage/engine.py), and SQLite
        reads one statement from one snapshot of the log. The two statements
        around it were a third of the session check's database time
        (bench/analysis.md). On PostgreSQL, :meth:`_autocommit_read`.
        Elsewhere on SQLite (off the loop), a read-only transaction."""
        reader = self._free_loop_reader()
        if reader is None and not self.is_sqlite:
            return self._autocommit_read(work)
        if reader is None:
            with self.transaction(write=False) as tx:
                return work(tx)
        try:
            return work(SqlTransaction(reader, False))
        except Exception as error:  # the driver's, from the prepared statement
            _drop_if_broken(reader, error)
            _raise_as_unavailable(error)

    def _autocommit_read(self, work: Callable[[SqlTransaction], T]) -> T:
        """PostgreSQL's :meth:`single_statement_read`: one statement alone, on a
        pooled connection in autocommit (each statement there reads from a
        snapshot of its own) and without the pool's ping. ``BEGIN``,
        ``COMMIT`` and the ping were three of the session check's four round
        trips (bench/analysis.md). A connection the server closed since its
        last use (a restart) fails at once: the read is then made again with
        the ping, which replaces every connection made before the restart, as
        the ping would have done first. A try that failed later is not made
        again (the deadline). The connection goes back to the pool out of
        autocommit (SQLAlchemy resets what ``execution_options`` set)."""
        if self._deadlines is None:  # the pool pings every connection itself
            return self._autocommit_try(work)
        started = time.monotonic()
        with self._deadlines.within(ping=False):
            try:
                return self._autocommit_try(work)
            except _UnpingedConnectionLost:
                # Only a failure at once is a connection closed beforehand. A
                # second try after a later one (a lock waited for, then the
                # connection cut) could outlast the deadline: a new
                # connection's least connect time is 2 s, and the pool's wait
                # is bounded by the engine, not by what is left of this one.
                if time.monotonic() - started > RETRY_WITHIN_SECONDS:
                    raise
                with self._deadlines.within(ping=True):
                    return self._autocommit_try(work)

    def _autocommit_try(self, work: Callable[[SqlTransaction], T]) -> T:
        unpinged = False
        try:
            with self.engine.connect() as conn:
                unpinged = bool(conn.info.pop("unpinged", False))
                conn.execution_options(isolation_level="AUTOCOMMIT")
                try:
                    return work(SqlTransaction(conn, False))
                except Exception as error:
                    _drop_if_broken(conn, error)
                    raise
        except Exception as error:
            _raise_as_unavailable(error, _UnpingedConnectionLost if unpinged else StoreUnavailable)

    def _connect(self, write: bool) -> AbstractContextManager[Connection]:
        """A connection for one transaction: the loop's reader for a read on
        the loop's thread when it is free, else one from the pool."""
        reader = None if write else self._free_loop_reader()
        return self.engine.connect() if reader is None else nullcontext(reader)

    def _free_loop_reader(self) -> Connection | None:
        """The loop's reader, when called on the loop's thread (SQLite) and it
        is in no transaction now (a read inside a read needs another)."""
        if threading.get_ident() != self._loop_thread:
            return None
        reader = self._loop_reader
        if reader is None or reader.invalidated or reader.closed:
            reader = self._loop_reader = self.engine.connect()
        elif reader.in_transaction():
            return None
        return reader

    def connections_in_use(self) -> int:
        """Connections taken from the pool and working now: the loop's reader
        counts only while it is inside a transaction."""
        checked_out = getattr(self.engine.pool, "checkedout", None)
        taken = checked_out() if callable(checked_out) else 0
        reader = self._loop_reader
        idle = reader is not None and not reader.closed and not reader.in_transaction()
        return max(0, int(taken) - int(idle))

    async def run(self, work: Callable[[], T], *, slow: bool = False, write: bool = True) -> T:
        """See :meth:`quatrix_mfa.core.ports.Store.run`.

        On SQLite, a short write runs on the event loop when the writer lock
        is free this very moment, holding it: nothing it does can wait (no
        other writer can begin while it holds the lock, and WAL readers never
        block a writer), and it costs less than the hop to a worker thread and
        back. A short read runs on the loop too: a WAL read never waits for a
        lock and takes a tenth of a millisecond. On PostgreSQL every statement
        is a network round trip, which must not stall the loop.
        """
        if self.is_sqlite and not slow:
            if not write:
                if self._loop_thread is None:  # the first loop's thread; one at a time
                    self._loop_thread = threading.get_ident()
                return work()
            with self._writer.hold_if_free() as free:
                if free:
                    return work()
        return await anyio.to_thread.run_sync(work)

    async def run_within(self, seconds: float, work: Callable[[], T]) -> T:
        """``work`` in a worker thread, given ``seconds``: past them
        :class:`StoreUnavailable` at once, without waiting for the thread (on
        PostgreSQL its connection is cut off at the same deadline, so the
        thread ends as well). For ``/readyz``, which must answer quickly."""

        def bounded() -> T:
            with nullcontext() if self._deadlines is None else self._deadlines.within(seconds):
                return work()

        with anyio.move_on_after(seconds):
            return await anyio.to_thread.run_sync(bounded, abandon_on_cancel=True)
        raise StoreUnavailable("no answer in time")

    def writer_if_free(self) -> AbstractContextManager[bool]:
        """See :meth:`WriterQueue.hold_if_free` (always False on PostgreSQL)."""
        return self._writer.hold_if_free()

    def checkpoint(self, restart_pages: int = RESTART_PAGES) -> tuple[int, int] | None:
        """Copy SQLite's write-ahead log into the database file, off the request
        path. Returns (frames in the log, frames copied) after the last pass,
        or None where there is no log (PostgreSQL, an in-memory database).

        A PASSIVE checkpoint waits for no reader and no writer; writers go on
        appending meanwhile, so it never copies the frames that arrived during
        it, and the log never starts over by itself. SQLite then checkpoints
        inside some writer's commit once the log reaches ``wal_autocheckpoint``
        pages, and that commit, which holds every other writer up (on SQLite
        every check is a writer), took ~100 ms: the p99 of second-factor checks.
        So once the log holds ``restart_pages``, the last pass here holds the
        writer lock. Passes without it first shrink what is left to what arrived
        during the pass before, so the lock is held for a small copy. With all
        of the log copied, the next writer starts it over, and syncs only its
        header (https://sqlite.org/wal.html#ckpt).
        """
        if self._writer.path is None:
            return None
        connection = self.engine.raw_connection()
        try:
            # On the driver: through SQLAlchemy this would BEGIN IMMEDIATE first.
            driver = connection.driver_connection
            frames, copied = _passive_checkpoint(driver)
            for _ in range(2):
                if frames < restart_pages or frames - copied <= restart_pages // 16:
                    break
                frames, copied = _passive_checkpoint(driver)
            # Even when all is copied: a writer that began during the pass read
            # before the copy and will not start the log over. Under the lock no
            # writer of ours is mid-transaction (idle, the pass is ~0.1 ms).
            if frames >= restart_pages:
                with self._writer.hold():
                    frames, copied = _passive_checkpoint(driver)
        finally:
            connection.close()
        return frames, copied

    def dispose(self) -> None:
        if self._loop_reader is not None:
            self._loop_reader.close()
            self._loop_reader = None
        self.engine.dispose()
        self._writer.close()
