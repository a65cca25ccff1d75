"""SQLite's write-ahead log is copied into the database file off the request
path (SqlStore.checkpoint, run by the app a few times a second), not inside
a writer's commit, where every other writer waited for it."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import insert

from quatrix_mfa.api.app import create_app
from quatrix_mfa.core.context import Core
from quatrix_mfa.settings import Settings
from quatrix_mfa.storage import migrate
from quatrix_mfa.storage.engine import AUTOCHECKPOINT_PAGES, RESTART_PAGES
from quatrix_mfa.storage.store import SqlStore
from quatrix_mfa.storage.tables import throttle
from tests.conftest import FAST_ARGON2


def write_pages(store: SqlStore, rows: int = 3000) -> None:
    """Enough rows for a few hundred pages of log."""
    values = [
        {"key": f"k:{uuid.uuid4()}", "failures": 1, "blocked_until": 0.0, "updated": 1.0}
        for _ in range(rows)
    ]
    with store.transaction() as tx:
        tx.conn.execute(insert(throttle), values)  # type: ignore[attr-defined]


def test_checkpoint_copies_the_whole_log(core: Core, db_kind: str) -> None:
    store = core.store
    assert isinstance(store, SqlStore)
    write_pages(store)
    done = store.checkpoint()
    if db_kind == "postgresql":
        assert done is None  # no log to copy
        return
    assert done is not None
    frames, copied = done
    assert frames > 50 and copied == frames


def test_commits_do_not_checkpoint_before_the_safety_net(core: Core, db_kind: str) -> None:
    store = core.store
    assert isinstance(store, SqlStore)
    if db_kind == "postgresql":
        assert store.checkpoint() is None
        return
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


def test_the_app_checkpoints_in_the_background(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, argon2=FAST_ARGON2)
    migrate.upgrade(settings.effective_database_url)
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


def test_a_long_log_is_copied_whole_under_the_writer_lock(core: Core, db_kind: str) -> None:
    # Writers append while a PASSIVE pass copies, so without the lock the log
    # is never all copied and never starts over by itself (SQLite then
    # checkpoints inside some writer's commit). Past restart_pages the last
    # pass holds our writer lock: everything is copied, and the next writer
    # starts the log over.
    store = core.store
    assert isinstance(store, SqlStore)
    if db_kind == "postgresql":
        assert store.checkpoint(restart_pages=1) is None
        return
    stop = threading.Event()
    writes = 0

    def writer() -> None:
        nonlocal writes
        while not stop.is_set():
            write_pages(store, 50)
            writes += 1

    write_pages(store)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while writes < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        results = [store.checkpoint(restart_pages=100) for _ in range(5)]
    finally:
        stop.set()
        thread.join(timeout=30)
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


def test_a_short_log_is_left_to_passes_without_the_lock(core: Core, db_kind: str) -> None:
    store = core.store
    assert isinstance(store, SqlStore)
    if db_kind == "postgresql":
        return
    write_pages(store)
    with store.writer_if_free() as free:  # a writer holds the lock meanwhile
        assert free
        done: list[tuple[int, int] | None] = []
        thread = threading.Thread(target=lambda: done.append(store.checkpoint()))
        thread.start()
        thread.join(timeout=10)
        assert not thread.is_alive()  # it did not wait for the lock
    assert done and done[0] is not None and done[0][0] < RESTART_PAGES
