"""Which database errors mean "the database cannot answer now" (an outage to
wait out, answered 503) rather than a fault in our code (500).

PostgreSQL: the server stopped, restarting or unreachable (connection refused,
terminated, closed), a connect or pool timeout, a statement cancelled by its
time limit. SQLite: the disk full, the file or its folder read-only, an I/O
error, the file gone, or a lock held longer than the busy timeout. A
constraint violation or a bad statement stays a fault: hiding it as an
outage would retry a bug for ever.
"""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy import exc

# SQLite's messages for the outages (sqlite3 raises OperationalError for all
# of them; https://sqlite.org/rescode.html: SQLITE_FULL, SQLITE_READONLY*,
# SQLITE_IOERR*, SQLITE_CANTOPEN, SQLITE_BUSY).
_SQLITE_OUTAGES = (
    "database or disk is full",
    "readonly database",
    "disk i/o error",
    "unable to open database file",
    "database is locked",
)


def outage_reason(error: BaseException) -> str | None:
    """A short word naming the outage ``error`` stands for, or None if it is
    not one (then it is a fault and propagates as it is).

    Both SQLAlchemy's wrapped errors and the drivers' own: the prepared
    statements (storage/prepared.py) run on the driver's cursor."""
    if isinstance(error, sqlite3.OperationalError):
        return _sqlite_outage(str(error))
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        # Connection refused or lost, server shutting down (57P01), a
        # statement cancelled by statement_timeout (57014).
        return "database unreachable"
    if isinstance(error, exc.TimeoutError):  # the pool had no connection in time
        return "pool timeout"
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return "connection lost"
    if isinstance(error, exc.DisconnectionError):
        return "connection lost"
    if isinstance(error, exc.DBAPIError) and error.orig is not None:
        return outage_reason(error.orig)
    return None


def _sqlite_outage(message: str) -> str | None:
    text = message.lower()
    for outage in _SQLITE_OUTAGES:
        if outage in text:
            return outage
    return None


def wrapped_outage(error: OSError) -> str:
    """The writer queue's lock file beside a SQLite database could not be
    opened (folder read-only, disk full): the same outage for the client."""
    return f"lock file: {error.strerror or type(error).__name__}"
