"""SqlStore.writer_if_free: the SQLite writer lock taken only when nobody holds
it at this moment, without waiting (SqlStore.run runs a short write on the
event loop only then)."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from quatrix_mfa.core.context import Core
from quatrix_mfa.storage.store import WriterQueue
from tests.conftest import only_on
from tests.support.storage import another_thread_writing, store_of

# On PostgreSQL writer_if_free is always False, so these would pass checking nothing.
sqlite_only = only_on("sqlite", "SQLite's writer lock: PostgreSQL has none")


@only_on("postgresql", "PostgreSQL's side: no writer lock; the SQLite run checks the lock")
def test_there_is_no_writer_lock_to_take_on_postgresql(core: Core) -> None:
    store = store_of(core)
    with store.writer_if_free() as free:
        assert free is False
        with store.transaction() as tx:  # and writers do not wait for one
            tx.throttle.add_failures(["k"], 1.0)
    with store.transaction(write=False) as tx:
        assert [state.failures for state in tx.throttle.states(["k", "x"])] == [1]


@sqlite_only
def test_a_free_writer_lock_is_taken_and_transactions_run_inside_it(core: Core) -> None:
    store = store_of(core)
    with store.writer_if_free() as free:
        assert free is True
        with store.transaction() as tx:  # the same thread may write while holding it
            tx.throttle.add_failures(["k"], 1.0)
    with store.transaction(write=False) as tx:
        assert [state.failures for state in tx.throttle.states(["k", "x"])] == [1]


@sqlite_only
def test_a_writer_lock_held_by_another_thread_is_not_free(core: Core) -> None:
    store = store_of(core)
    with another_thread_writing(store), store.writer_if_free() as free:
        assert free is False
    with store.writer_if_free() as free:
        assert free is True  # and free again once the writer is done


@sqlite_only
def test_a_writer_lock_held_by_another_process_is_not_free(core: Core) -> None:
    store = store_of(core)
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


@only_on("sqlite", "a lock file of its own whatever --db says: the SQLite run has it")
def test_a_writer_queued_for_the_lock_goes_before_the_event_loop(tmp_path: Path) -> None:
    # The lock freed while a thread waits for it: hold_if_free (the event
    # loop's try) must not take it in that instant, ahead of the queued thread.
    queue = WriterQueue(str(tmp_path / "db-writer.lock"))
    got_it, tried = threading.Event(), threading.Event()

    def queued_writer() -> None:
        with queue.hold():
            got_it.set()
            assert tried.wait(timeout=30)  # still holding when the main thread tries

    with ThreadPoolExecutor(max_workers=1) as pool:
        with queue.hold():
            writing = pool.submit(queued_writer)
            deadline = time.monotonic() + 10
            while queue.waiting == 0 and time.monotonic() < deadline:
                time.sleep(0.001)  # polls a condition; no lock is given up meanwhile
            assert queue.waiting == 1
        try:
            with queue.hold_if_free() as free:  # the same instant the lock was let go
                assert free is False
        finally:
            tried.set()
        writing.result(timeout=10)
    assert got_it.is_set()
    assert queue.waiting == 0
    with queue.hold_if_free() as free:
        assert free is True  # nobody queued, nobody holding
    queue.close()
