"""SQLite's write-ahead log is copied into the database file off the request
path (SqlStore.checkpoint, run by the app a few times a second), not inside
a writer's commit, where every other writer waited for it."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import insert

from quatrix_mfa.api.app import create_app
from quatrix_mfa.core.context import Core
from quatrix_mfa.keys import create_key_file
from quatrix_mfa.settings import Settings
from quatrix_mfa.storage import migrate
from quatrix_mfa.storage.engine import AUTOCHECKPOINT_PAGES, RESTART_PAGES
from quatrix_mfa.storage.store import SqlStore
from quatrix_mfa.storage.tables import throttle
from tests.conftest import FAST_ARGON2, only_on

# On PostgreSQL these would pass checking nothing: it has no log to copy.
sqlite_only = only_on("sqlite", "SQLite's write-ahead log: PostgreSQL has none to checkpoint")


def write_pages(store: SqlStore, rows: int = 3000) -> None:
    """Enough rows for a few hundred pages of log."""
    values = [
        {"key": f"k:{uuid.uuid4()}", "failures": 1, "blocked_until": 0.0, "updated": 1.0}
        for _ in range(rows)
    ]
    with store.transaction() as tx:
        tx.conn.execute(insert(throttle), values)  # type: ignore[attr-defined]


@only_on("postgresql", "PostgreSQL's side: no log; the SQLite run checks the log's copy")
def test_checkpoint_is_nothing_to_do_on_postgresql(core: Core) -> None:
    store = core.store
    assert isinstance(store, SqlStore)
    write_pages(store)
    assert store.checkpoint() is None  # no log to copy
    assert store.checkpoint(restart_pages=1) is None


@sqlite_only
def test_checkpoint_copies_the_whole_log(core: Core) -> None:
    store = core.store
    assert isinstance(store, SqlStore)
    write_pages(store)
    done = store.checkpoint()
    assert done is not None
    frames, copied = done
    assert frames > 50 and copied == frames


@sqlite_only
def test_commits_do_not_checkpoint_before_the_safety_net(core: Core) -> None:
    store = core.store
    assert isinstance(store, SqlStore)
    with store.engine.connect() as conn:
        pages = conn.connection.dbapi_connection.execute(  # type: ignore[union-attr]
            "PRAGMA wal_autocheckpoint"
        ).fetchone()[0]
    assert pages == AUTOCHECKPOINT_PAGES
    store.checkpoint()
    for _ in range(3):  # past SQLite's default of 1,000 pages
        write_pages(store, 15_000)
    done = store.checkpoint()
    assert done is not None and done[0] > 1000  # the commits left it all to us


@only_on("sqlite", "makes its own SQLite database whatever --db says: the SQLite run has it")
def test_the_app_checkpoints_in_the_background(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, argon2=FAST_ARGON2)
    migrate.upgrade(settings.effective_database_url)
    create_key_file(settings.key_file)
    database = tmp_path / "quatrix-mfa.db"
    app = create_app(settings, background=True)
    with TestClient(app):
        store = app.state.core.store
        before = database.stat().st_size
        write_pages(store)
        deadline = time.monotonic() + 10
        while database.stat().st_size == before and time.monotonic() < deadline:
            time.sleep(0.05)
        # The new rows reached the database file without anyone asking.
        assert database.stat().st_size > before


@sqlite_only
def test_a_long_log_is_copied_whole_under_the_writer_lock(core: Core) -> None:
    # Writers append while a PASSIVE pass copies, so without the lock the log
    # is never all copied and never starts over by itself (SQLite then
    # checkpoints inside some writer's commit). Past restart_pages the last
    # pass holds our writer lock: everything is copied, and the next writer
    # starts the log over.
    store = core.store
    assert isinstance(store, SqlStore)
    stop, busy = threading.Event(), threading.Event()
    writes = 0

    def writer() -> None:
        nonlocal writes
        while not stop.is_set():
            write_pages(store, 50)
            writes += 1
            if writes >= 20:
                busy.set()

    write_pages(store)
    with ThreadPoolExecutor(max_workers=1) as pool:
        writing = pool.submit(writer)
        try:
            assert busy.wait(timeout=30), "the writer thread did not get going"
            results = [store.checkpoint(restart_pages=100) for _ in range(5)]
        finally:
            stop.set()
        writing.result(timeout=30)  # its errors, if any, fail the test here
    assert writes >= 20
    for done in results:
        assert done is not None
        frames, copied = done
        assert copied == frames  # all of it, with writers busy throughout
    assert max(done[0] for done in results if done) >= 100  # long enough to restart
    write_pages(store, 1)
    frames_after, _ = store.checkpoint(restart_pages=10**9) or (0, 0)
    # Started over: without that it would hold all the frames above and more.
    assert 0 < frames_after < max(done[0] for done in results if done)


@sqlite_only
def test_a_short_log_is_left_to_passes_without_the_lock(core: Core) -> None:
    store = core.store
    assert isinstance(store, SqlStore)
    write_pages(store)
    # A writer (this thread) holds the lock while another thread checkpoints;
    # the pool is left last, so a checkpoint that waits for the lock times out.
    with ThreadPoolExecutor(max_workers=1) as pool, store.writer_if_free() as free:
        assert free
        # Answers while the lock is still held: it did not wait for it.
        done = pool.submit(store.checkpoint).result(timeout=10)
    assert done is not None and done[0] < RESTART_PAGES
