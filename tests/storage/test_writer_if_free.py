"""SqlStore.writer_if_free: the SQLite writer lock taken only when nobody holds
it at this moment, without waiting (SqlStore.run runs a short write on the
event loop only then)."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from quatrix_mfa.core.context import Core
from quatrix_mfa.storage.store import SqlStore, WriterQueue


def store_of(core: Core) -> SqlStore:
    assert isinstance(core.store, SqlStore)
    return core.store


def test_a_free_writer_lock_is_taken_and_transactions_run_inside_it(
    core: Core, db_kind: str
) -> None:
    store = store_of(core)
    with store.writer_if_free() as free:
        assert free is (db_kind == "sqlite")  # PostgreSQL has no writer lock
        with store.transaction() as tx:  # the same thread may write while holding it
            tx.throttle.add_failure("k", 1.0)
    with store.transaction(write=False) as tx:
        assert [state.failures for state in tx.throttle.states(["k", "x"])] == [1]


@contextmanager
def another_thread_writing(store: SqlStore) -> Iterator[None]:
    """A write transaction open in another thread for as long as this is entered."""
    holding, done = threading.Event(), threading.Event()

    def writer() -> None:
        with store.transaction():
            holding.set()
            done.wait(timeout=10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(timeout=10)
        yield
    finally:
        done.set()
        thread.join(timeout=10)


def test_a_writer_lock_held_by_another_thread_is_not_free(core: Core) -> None:
    store = store_of(core)
    with another_thread_writing(store), store.writer_if_free() as free:
        assert free is False
    with store.writer_if_free() as free:
        assert free is store.is_sqlite  # and free again once the writer is done


def test_a_writer_lock_held_by_another_process_is_not_free(core: Core, db_kind: str) -> None:
    store = store_of(core)
    if db_kind == "postgresql":
        with store.writer_if_free() as free:
            assert free is False
        return
    # An flock on its own open of the lock file conflicts like another process's.
    database = store.engine.url.database
    other = os.open(f"{database}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        with store.writer_if_free() as free:
            assert free is False
        fcntl.flock(other, fcntl.LOCK_UN)
        with store.writer_if_free() as free:
            assert free is True
    finally:
        os.close(other)


def test_a_writer_queued_for_the_lock_goes_before_the_event_loop(tmp_path: Path) -> None:
    # The lock freed while a thread waits for it: hold_if_free (the event
    # loop's try) must not take it in that instant, ahead of the queued thread.
    queue = WriterQueue(str(tmp_path / "db-writer.lock"))
    got_it = threading.Event()

    def queued_writer() -> None:
        with queue.hold():
            got_it.set()
            time.sleep(0.2)  # still holding when the main thread tries

    thread = threading.Thread(target=queued_writer)
    with queue.hold():
        thread.start()
        deadline = time.monotonic() + 10
        while queue.waiting == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert queue.waiting == 1
    with queue.hold_if_free() as free:  # the same instant the lock was let go
        assert free is False
    thread.join(timeout=10)
    assert got_it.is_set()
    assert queue.waiting == 0
    with queue.hold_if_free() as free:
        assert free is True  # nobody queued, nobody holding
    queue.close()
