"""SQLite's write-ahead log is copied into the database file off the request
path (SqlStore.checkpoint, run by the app a few times a second), not inside
a writer's commit, where every other writer waited for it."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import insert

from quatrix_mfa.api.app import create_app
from quatrix_mfa.core.context import Core
from quatrix_mfa.settings import Settings
from quatrix_mfa.storage import migrate
from quatrix_mfa.storage.engine import AUTOCHECKPOINT_PAGES
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
