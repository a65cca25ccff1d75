"""Engines for SQLite (WAL, one writer at a time) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from quatrix_mfa.storage.deadline import LEAST_CONNECT_SECONDS, Deadlines

# SqlStore.checkpoint has the log start over once it holds this many pages
# (160 MiB of 4 KiB pages): each time costs the writers one wait for two
# fsyncs (~70 ms on the benchmark box), so not often.
RESTART_PAGES = 40_000
# SQLite's own checkpoint, inside a commit: only if SqlStore.checkpoint falls behind.
AUTOCHECKPOINT_PAGES = 100_000

# PostgreSQL away (stopped, restarting, unreachable): every request must get an
# answer within a few seconds (a 503, storage/outage.py), never hang. A new
# connection gives up after CONNECT_SECONDS (libpq's connect_timeout), a
# request waiting for a pooled one after POOL_SECONDS, and a statement is
# cancelled after STATEMENT_SECONDS (the longest of ours, a purge, takes
# milliseconds). TCP keepalives notice a server that vanished without closing
# the connection (a host down) within KEEPALIVE_SECONDS and three probes.
# The service's own engine has a bound of its own instead (deadlines, from
# QUATRIX_MFA_DB_TIMEOUT_SECONDS): it also holds against a server that is
# there but does not answer (storage/deadline.py).
CONNECT_SECONDS = 3
POOL_SECONDS = 5
STATEMENT_SECONDS = 10
KEEPALIVE_SECONDS = 5


def normalize_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and pick the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, pool_size: int = 10, deadlines: Deadlines | None = None) -> Engine:
    """An engine for ``url``; on PostgreSQL with ``deadlines``, each connection
    handed out is cut off at its deadline (storage/deadline.py), and the
    server keeps the same bound on each statement and each transaction left
    idle (by a client of ours that froze while it held row locks)."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, pool_size)
    if deadlines is None:
        pool_seconds: float = POOL_SECONDS
        connect_seconds = CONNECT_SECONDS
        options = f"-c statement_timeout={STATEMENT_SECONDS * 1000}"
    else:
        # Of a unit of work's time, waiting for a pooled connection leaves
        # enough for a new one (which the pool makes for one an outage
        # broke): the two together stay within the bound.
        bound = deadlines.seconds
        pool_seconds = max(1.0, bound - LEAST_CONNECT_SECONDS)
        connect_seconds = max(LEAST_CONNECT_SECONDS, min(CONNECT_SECONDS, math.floor(bound)))
        options = (
            f"-c statement_timeout={round(bound * 1000)}"
            f" -c idle_in_transaction_session_timeout={round(bound * 1000)}"
        )
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # A pooled connection the server closed (a restart) is replaced before
        # use, so the service recovers by itself when it returns. With
        # deadlines they make that check themselves, under the deadline.
        pool_pre_ping=deadlines is None,
        pool_timeout=pool_seconds,
        connect_args={
            "connect_timeout": connect_seconds,
            "options": options,
            "keepalives": 1,
            "keepalives_idle": KEEPALIVE_SECONDS,
            "keepalives_interval": KEEPALIVE_SECONDS,
            "keepalives_count": 3,
        },
    )
    if deadlines is not None:
        deadlines.watch(engine)
    return engine


def sqlite_file(url: str | URL) -> str | None:
    """The file of the SQLite database at ``url``; None for PostgreSQL, an
    in-memory database or a ``file:`` URI (whose file SQLite names itself).
    Beside it go the lock files of its writers and of its migrations."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database:
        return None
    if database == ":memory:" or database.startswith("file:"):
        return None
    return database


def _create_private(url: str) -> None:
    """A new SQLite file is created 0600 whatever the umask: it holds password
    hashes and sealed secrets (SQLite gives its -wal and -shm files the same mode)."""
    database = sqlite_file(url)
    if database is None:
        return
    path = Path(database)
    if path.exists() or not path.parent.is_dir():
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.chmod(path, 0o600)


def _sqlite_engine(url: str, pool_size: int) -> Engine:
    _create_private(url)
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args={"check_same_thread": False, "timeout": 30},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Checkpoints belong to SqlStore.checkpoint, run off the request path.
        # SQLite's own (every 1,000 pages) runs inside a writer's commit, and
        # every other writer waited for it: the p99 of a valid second-factor
        # check was 6 ms sequentially, 168 ms at 16 concurrent (bench/analysis.md).
        # The automatic one stays as a safety net for a WAL that grows anyway.
        cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A writer takes the write lock up front (BEGIN IMMEDIATE): two
        # deferred transactions that both upgrade to writing would deadlock
        # with SQLITE_BUSY instead of queueing on busy_timeout. Sent on the
        # driver's connection: through SQLAlchemy's execution machinery this
        # one word cost as much as the query after it (bench/analysis.md).
        conn.connection.dbapi_connection.execute(conn.info.pop("begin", "BEGIN IMMEDIATE"))

    return engine
