"""Several processes migrate the same fresh, empty database at once.

README: nodes starting at once migrate once (a PostgreSQL advisory lock; on
SQLite the write lock). Every process must exit 0 and leave the schema
complete and at the newest revision.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from quatrix_mfa.api.app import build_core
from quatrix_mfa.core.bootstrap import bootstrap
from quatrix_mfa.core.clock import SystemClock
from quatrix_mfa.keys import create_key_file
from quatrix_mfa.settings import Settings
from quatrix_mfa.storage import migrate
from quatrix_mfa.storage.engine import normalize_url
from quatrix_mfa.storage.tables import metadata
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, FAST_ARGON2, PG_ADMIN_URL

PROCESSES = 4
ROUNDS = 2
# Each child waits for a start file, so all of them reach upgrade() together
# instead of one finishing its imports (the slow part) before the others.
CHILD = """
import sys, time
from pathlib import Path
from quatrix_mfa.storage import migrate
go = Path(sys.argv[2])
deadline = time.monotonic() + 60
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("start signal never came")
    time.sleep(0.005)
migrate.upgrade(sys.argv[1])
"""


@pytest.fixture
def fresh_url(db_kind: str, tmp_path: Path) -> Iterator[str]:
    """A brand-new empty database: a SQLite file that does not exist yet, or a
    PostgreSQL database created for this test and dropped afterwards."""
    if db_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"qmfa_migrate_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def migrate_at_once(url: str, go: Path) -> list[subprocess.CompletedProcess[str]]:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, url, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    try:
        go.touch()
        results = []
        for child in children:
            out, err = child.communicate(timeout=120)
            results.append(subprocess.CompletedProcess(child.args, child.returncode, out, err))
        return results
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)


def assert_complete_and_current(url: str) -> None:
    engine = create_engine(normalize_url(url))
    try:
        assert migrate.is_current(engine)
        inspector = inspect(engine)
        tables = set(inspector.get_table_names())
        assert tables == set(metadata.tables) | {"alembic_version"}
        for table in metadata.sorted_tables:
            columns = {c["name"] for c in inspector.get_columns(table.name)}
            assert columns == {c.name for c in table.columns}, table.name
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        assert len(versions) == 1, versions
    finally:
        engine.dispose()


def test_processes_migrating_one_empty_database_at_once_all_succeed(
    fresh_url: str, tmp_path: Path
) -> None:
    engine = create_engine(normalize_url(fresh_url))
    try:
        assert inspect(engine).get_table_names() == []  # really empty to begin with
    finally:
        engine.dispose()
    for round_ in range(ROUNDS):
        # Round 0 races on an empty database; round 1 on one already at head.
        results = migrate_at_once(fresh_url, tmp_path / f"go-{round_}")
        failures = [r.stderr[-2000:] for r in results if r.returncode != 0]
        assert failures == [], failures
        assert_complete_and_current(fresh_url)


def test_a_service_can_use_the_database_the_racing_processes_migrated(
    fresh_url: str, tmp_path: Path
) -> None:
    results = migrate_at_once(fresh_url, tmp_path / "go")
    assert [r.returncode for r in results] == [0] * PROCESSES, [r.stderr[-2000:] for r in results]
    settings = Settings(data_dir=tmp_path / "data", database_url=fresh_url, argon2=FAST_ARGON2)
    create_key_file(settings.key_file)
    core = build_core(settings, SystemClock())
    try:
        assert bootstrap(core, ADMIN_EMAIL, "Example", ADMIN_PASSWORD).created
        with core.store.transaction(write=False) as tx:
            admin = tx.users.by_email(ADMIN_EMAIL)
        assert admin is not None and admin.email == ADMIN_EMAIL
    finally:
        core.store.dispose()  # type: ignore[attr-defined]
