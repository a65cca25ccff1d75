"""A PostgreSQL that is there but does not answer: its processes frozen with
SIGSTOP, as a hung VM or a network partition looks (the kernel still accepts
connections and acknowledges every byte). A unit of work gives up within the
store's timeout with StoreUnavailable (a 503), never hangs; the connections
it held are dropped, not reused; the store works again by itself once the
server runs; a unit of work cut off is rolled back whole or committed whole
(issue 15, item 5). The server is the test's own (tests/support/own_postgres.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from quatrix_mfa.core.errors import StoreUnavailable
from quatrix_mfa.storage.store import SqlStore
from tests.conftest import only_on
from tests.support.own_postgres import OwnPostgres, own_server

TIMEOUT = 2  # the store's bound, as QUATRIX_MFA_DB_TIMEOUT_SECONDS
# Over the bound: the watchdog looks ten times a second, and the box is busy.
SLACK = 1.0

pytestmark = only_on("postgresql", "freezes a PostgreSQL of its own: once per suite is enough")


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[OwnPostgres]:
    """One server for the module: initdb and a start take seconds."""
    with own_server() as server:
        server.start()
        yield server


@pytest.fixture
def store(own_postgres: OwnPostgres) -> Iterator[SqlStore]:
    store = SqlStore.from_url(own_postgres.url, pool_size=2, timeout=TIMEOUT)
    with store.transaction() as tx:
        tx.conn.execute(text("DROP TABLE IF EXISTS notes"))
        tx.conn.execute(text("CREATE TABLE notes (what TEXT NOT NULL)"))
    yield store
    own_postgres.resume()  # a failed test may have left it frozen: not the next test's problem
    store.dispose()


def finishes(work: Callable[[], Any], seconds: float) -> Any:
    """``work()``'s result, or its error raised here; it must end within
    ``seconds``: a unit of work that hangs fails the test instead of hanging it."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(("value", work()))
        except BaseException as error:
            outcome.append(("error", error))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still waiting after {seconds} s"
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value


def add(store: SqlStore, *notes: str) -> None:
    with store.transaction() as tx:
        for note in notes:
            tx.conn.execute(text("INSERT INTO notes VALUES (:n)"), {"n": note})


def count(server: OwnPostgres, note: str) -> int:
    """Read on a connection of its own, once the server's backends are done."""
    with psycopg.connect(server.url, autocommit=True) as conn:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # a cut-off backend ends when it runs again
            others = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
                " AND state <> 'idle'"
            ).fetchone()
            if others == (0,):
                break
            time.sleep(0.05)
        found = conn.execute("SELECT count(*) FROM notes WHERE what = %s", (note,)).fetchone()
    assert found is not None
    return int(found[0])


def timed_unit(store: SqlStore) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        add(store, "during")
    except Exception as error:
        return time.monotonic() - started, error
    return time.monotonic() - started, None


def test_units_of_work_on_a_stalled_server_give_up_in_time_and_hold_nothing(
    store: SqlStore, own_postgres: OwnPostgres
) -> None:
    add(store, "before")  # one connection in the pool, idle: its next use pings it
    results: list[tuple[float, BaseException | None]] = []
    # More units at once than the pool holds with its overflow (2 + 2): some wait for one.
    workers = [threading.Thread(target=lambda: results.append(timed_unit(store))) for _ in range(6)]
    with own_postgres.stalled():
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=TIMEOUT + 10)
        assert not any(worker.is_alive() for worker in workers)  # nobody hangs
        assert len(results) == 6
        for seconds, error in results:
            assert isinstance(error, StoreUnavailable), error
            assert seconds < TIMEOUT + SLACK
        assert store.engine.pool.checkedout() == 0  # no connection kept out
        # /readyz's way: a short bound of its own, answered at once when it passes.
        probe = store.run_within(0.5, lambda: add(store, "ready?"))
        with pytest.raises(StoreUnavailable):
            finishes(lambda: asyncio.run(probe), 0.5 + SLACK)
    add(store, "after")  # the first unit after the server is back: no error
    assert count(own_postgres, "before") == 1
    assert count(own_postgres, "after") == 1


def test_a_unit_of_work_cut_off_midway_leaves_nothing_of_it(
    store: SqlStore, own_postgres: OwnPostgres
) -> None:
    def unit() -> None:
        with store.transaction() as tx:
            tx.conn.execute(text("INSERT INTO notes VALUES ('first half')"))
            with own_postgres.stalled():
                tx.conn.execute(text("INSERT INTO notes VALUES ('second half')"))

    with pytest.raises(StoreUnavailable):
        finishes(unit, TIMEOUT + SLACK)
    assert count(own_postgres, "first half") == 0
    assert count(own_postgres, "second half") == 0
    add(store, "after")
    assert count(own_postgres, "after") == 1


def test_a_commit_cut_off_is_kept_whole_or_not_at_all(
    store: SqlStore, own_postgres: OwnPostgres
) -> None:
    def unit(stall: contextlib.ExitStack) -> None:
        with store.transaction() as tx:
            tx.conn.execute(text("INSERT INTO notes VALUES ('one'), ('two')"))
            stall.enter_context(own_postgres.stalled())  # the COMMIT meets a frozen server

    with contextlib.ExitStack() as stall, pytest.raises(StoreUnavailable):
        finishes(lambda: unit(stall), TIMEOUT + SLACK)
    # The server may have read the COMMIT before it froze, or after it ran again.
    assert (count(own_postgres, "one"), count(own_postgres, "two")) in {(0, 0), (1, 1)}


def test_a_pooled_connection_the_server_closed_is_replaced_before_use(
    store: SqlStore, own_postgres: OwnPostgres
) -> None:
    add(store, "before")  # its connection waits in the pool
    own_postgres.stop()
    own_postgres.start()
    add(store, "after")  # checked before use and replaced: no error for this unit
    assert count(own_postgres, "after") == 1


def _single_read(store: SqlStore) -> int:
    """The session check's kind of read (``single_statement_read``): one statement."""
    return int(
        store.single_statement_read(
            lambda tx: tx.conn.execute(text("SELECT count(*) FROM notes")).scalar()  # type: ignore[attr-defined]
        )
    )


def test_a_single_read_after_a_restart_is_made_again_and_answers(
    store: SqlStore, own_postgres: OwnPostgres
) -> None:
    """The single read takes its pooled connection without a ping: one the
    server closed fails at once, and the read is made again with the ping,
    which replaces the pool's connections. The caller sees no error."""
    add(store, "before")
    assert _single_read(store) == 1  # connections wait in the pool
    own_postgres.stop()
    own_postgres.start()
    assert finishes(lambda: _single_read(store), TIMEOUT + SLACK) == 1
    assert finishes(lambda: _single_read(store), TIMEOUT + SLACK) == 1
    assert store.engine.pool.checkedout() == 0


def test_a_single_read_on_a_stalled_server_gives_up_in_time(
    store: SqlStore, own_postgres: OwnPostgres
) -> None:
    """Not made again past its deadline: a frozen server's answer is a
    StoreUnavailable within the store's bound, as for any unit of work."""
    add(store, "before")
    assert _single_read(store) == 1
    with own_postgres.stalled():
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            finishes(lambda: _single_read(store), TIMEOUT + SLACK)
        assert time.monotonic() - started < TIMEOUT + SLACK
        assert store.engine.pool.checkedout() == 0
    assert finishes(lambda: _single_read(store), TIMEOUT + SLACK) == 1


def test_a_single_read_that_fails_late_is_not_made_again(
    store: SqlStore, own_postgres: OwnPostgres
) -> None:
    """The read waits on a lock; late in its time its connection is cut and
    the server takes no new connections. Made again, it would wait for a new
    connection past the deadline (the least connect time is 2 s): it is not,
    the answer is a StoreUnavailable within the bound."""
    add(store, "before")
    assert _single_read(store) == 1  # a pooled connection, used without its ping next time
    with (
        psycopg.connect(own_postgres.url, autocommit=True) as admin,
        psycopg.connect(own_postgres.url) as locker,
    ):
        locker.execute("LOCK TABLE notes IN ACCESS EXCLUSIVE MODE")  # held: the read waits
        keep = (admin.info.backend_pid, locker.info.backend_pid)

        def cut_late() -> None:
            time.sleep(TIMEOUT * 0.6)
            os.kill(own_postgres.postmaster(), signal.SIGSTOP)  # no new connections answered
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE backend_type = 'client backend' AND pid <> ALL(%s)",
                (list(keep),),
            )

        cutter = threading.Thread(target=cut_late)
        cutter.start()
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                finishes(lambda: _single_read(store), TIMEOUT + SLACK)
            assert time.monotonic() - started < TIMEOUT + SLACK
        finally:
            cutter.join()
            own_postgres.resume()
        locker.rollback()
    assert finishes(lambda: _single_read(store), TIMEOUT + SLACK) == 1
