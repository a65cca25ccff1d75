"""Client-side deadlines for PostgreSQL connections: a stalled server gets a
503 in a few seconds, never a hang (issue 15, item 5).

A server that stops closes its connections, and a host that vanishes stops
acknowledging; libpq notices both (``connect_timeout``, TCP keepalives). A
server whose processes are frozen (SIGSTOP, a hung VM, a partition behind a
proxy that still acknowledges) is another matter: its kernel acknowledges
every byte, keepalives get their answers, and ``statement_timeout`` is kept
by the very processes that stand still. psycopg would wait for ever, and
with it the worker thread and the pool's connection.

So every connection taken from the pool has a deadline: ``seconds`` after
the unit of work that takes it began (:class:`Within`, set by
``SqlStore.transaction``), else after it left the pool. A watchdog thread
shuts the socket of a connection still out past its deadline: the thread
waiting in libpq sees the connection closed at once, psycopg raises
``OperationalError`` (an outage: 503, storage/outage.py) and SQLAlchemy
discards the connection. Its transaction goes with it: the server rolls it
back when it runs again, or commits it if the ``COMMIT`` had reached it
already; never half of it.

Why not cancel the statement instead: a cancel request is a new connection
to the same frozen server, which would wait just as long. Why a duplicate of
the socket: libpq closes its own descriptor when a connection breaks, and the
number may then belong to another socket by the time the watchdog acts; the
duplicate always names this connection's socket.

The pool's ping (``pool_pre_ping``) runs before any event and would wait
outside the deadline: the ping is made here, once the deadline is armed.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
import weakref
from typing import Any

import psycopg
from sqlalchemy import Engine, event, exc
from sqlalchemy.pool import ConnectionPoolEntry

# How often the watchdog looks: deadlines are kept to within this.
TICK_SECONDS = 0.1
# libpq's (and psycopg's) least connect_timeout, in whole seconds: a
# smaller one counts as 2 s.
LEAST_CONNECT_SECONDS = 2
_local = threading.local()


class Within:
    """``with Within(seconds):`` a connection this thread takes from the pool
    meanwhile is cut off ``seconds`` from now (or at the deadline of an outer
    ``Within``, if that comes first).

    ``ping=False``: a connection taken meanwhile is not pinged first. For a
    read alone, which its caller makes again on another connection when this
    one turns out closed (a server restart), instead of paying a round trip
    for every use (``SqlStore.single_statement_read``)."""

    __slots__ = ("_outer", "_outer_ping", "_ping", "_seconds")

    def __init__(self, seconds: float, ping: bool = True) -> None:
        self._seconds = seconds
        self._ping = ping
        self._outer: float | None = None
        self._outer_ping = True

    def __enter__(self) -> None:
        self._outer = outer = getattr(_local, "deadline", None)
        self._outer_ping = getattr(_local, "ping", True)
        deadline = time.monotonic() + self._seconds
        _local.deadline = deadline if outer is None else min(outer, deadline)
        _local.ping = self._ping

    def __exit__(self, *_: object) -> None:
        _local.deadline = self._outer
        _local.ping = self._outer_ping


class _Watchdog:
    """One thread per process: shuts the socket of each connection that is
    still out of its pool past its deadline."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        # Also in a forked child: the parent's thread and lock holders are not there.
        self._lock = threading.Condition()
        self._armed: dict[ConnectionPoolEntry, tuple[float, socket.socket]] = {}
        self._thread: threading.Thread | None = None

    def arm(self, entry: ConnectionPoolEntry, deadline: float, sock: socket.socket) -> None:
        with self._lock:
            self._armed[entry] = (deadline, sock)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="db-deadlines", daemon=True)
                self._thread.start()
            self._lock.notify()

    def disarm(self, entry: ConnectionPoolEntry) -> None:
        # Under the lock: once back in the pool, a connection is never cut.
        with self._lock:
            self._armed.pop(entry, None)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._armed:  # sleep for good while nothing is out
                    self._lock.wait()
            time.sleep(TICK_SECONDS)
            self._expire(time.monotonic())

    def _expire(self, now: float) -> None:
        with self._lock:
            late = [entry for entry, (deadline, _) in self._armed.items() if deadline <= now]
            for entry in late:
                _, sock = self._armed.pop(entry)
                # Closed or broken already (OSError): then nothing waits on it.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


_WATCHDOG = _Watchdog()


class Deadlines:
    """The deadlines of one PostgreSQL engine's connections (:meth:`watch`)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def within(self, seconds: float | None = None, ping: bool = True) -> Within:
        """A unit of work's deadline (the engine's own bound unless ``seconds``);
        ``ping=False``: see :class:`Within`."""
        return Within(self.seconds if seconds is None else seconds, ping)

    def watch(self, engine: Engine) -> None:
        """Arm a deadline on every connection ``engine``'s pool hands out.
        The engine is made without ``pool_pre_ping``: the ping is made here."""
        ping = engine.dialect.do_ping
        seconds = self.seconds

        def connecting(_dialect: Any, _entry: Any, _args: Any, params: dict[str, Any]) -> None:
            # A new connection gets what is left of its unit of work's time.
            deadline = getattr(_local, "deadline", None)
            if deadline is not None:
                left = math.floor(deadline - time.monotonic())
                limit = min(params["connect_timeout"], left)
                params["connect_timeout"] = max(LEAST_CONNECT_SECONDS, limit)

        def connected(dbapi_connection: Any, entry: ConnectionPoolEntry) -> None:
            sock = socket.socket(fileno=os.dup(dbapi_connection.fileno()))
            entry.info["socket"] = sock
            entry.info["fresh"] = True  # it just answered: no ping for its first use
            # Should the pool ever drop it without its close event.
            weakref.finalize(dbapi_connection, sock.close)

        def checked_out(dbapi_connection: Any, entry: ConnectionPoolEntry, _proxy: Any) -> None:
            deadline = getattr(_local, "deadline", None) or time.monotonic() + seconds
            _WATCHDOG.arm(entry, deadline, entry.info["socket"])
            fresh = entry.info.pop("fresh", False)
            # Used unchecked: its user makes the read again should it fail.
            entry.info["unpinged"] = not fresh and not getattr(_local, "ping", True)
            if fresh or entry.info["unpinged"]:
                return
            try:
                ping(dbapi_connection)
            except (psycopg.OperationalError, psycopg.InterfaceError) as error:
                if time.monotonic() >= deadline:
                    raise  # cut off: no time left to try another connection
                # Closed by the server (a restart), as pool_pre_ping does: every
                # connection made before now is replaced, this one at once.
                raise exc.InvalidatePoolError() from error

        def checked_in(_dbapi_connection: Any, entry: ConnectionPoolEntry) -> None:
            _WATCHDOG.disarm(entry)

        def closed(_dbapi_connection: Any, entry: ConnectionPoolEntry) -> None:
            _WATCHDOG.disarm(entry)
            sock = entry.info.pop("socket", None)
            if sock is not None:
                sock.close()

        event.listen(engine, "do_connect", connecting)
        event.listen(engine, "connect", connected)
        event.listen(engine, "checkout", checked_out)
        event.listen(engine, "checkin", checked_in)
        event.listen(engine, "close", closed)
