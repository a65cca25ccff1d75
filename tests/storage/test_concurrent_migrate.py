"""Several processes migrate the same fresh, empty database at once.

README: nodes starting at once migrate once (a PostgreSQL advisory lock; on
SQLite the write lock). Every process must exit 0 and leave the schema
complete and at the newest revision. The lock must be held from reading the
version to the last migration: free in between, another node reads a version
the first one has already planned past, and both run the same migration.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, make_url, text

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
# A migrator that stops between its first migration and its second (at
# Alembic's per-migration transaction, where the interleaving happens) until
# the test has probed the lock.
PAUSING_CHILD = """
import sys, time
from pathlib import Path
from alembic.runtime.migration import MigrationContext
from quatrix_mfa.storage import migrate
paused, resume = Path(sys.argv[2]), Path(sys.argv[3])
original = MigrationContext.begin_transaction
steps = 0
def begin_transaction(self, _per_migration=False):
    global steps
    if _per_migration:
        steps += 1
        if steps == 2:
            paused.touch()
            deadline = time.monotonic() + 60
            while not resume.exists():
                if time.monotonic() > deadline:
                    sys.exit("never resumed")
                time.sleep(0.005)
    return original(self, _per_migration)
MigrationContext.begin_transaction = begin_transaction
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


def migration_lock_is_free(url: str) -> bool:
    """Whether another node could start migrating now: SQLite's write lock or
    the PostgreSQL advisory lock, tried without waiting."""
    if url.startswith("sqlite"):
        probe = sqlite3.connect(make_url(url).database or "", timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError as error:
            assert "locked" in str(error), error
            return False
        finally:
            probe.close()
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            taken = conn.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": migrate.MIGRATION_LOCK}
            ).scalar_one()
            if taken:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": migrate.MIGRATION_LOCK})
            return bool(taken)
    finally:
        engine.dispose()


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


def wait_for(done: Callable[[], bool], process: subprocess.Popen[str], what: str) -> None:
    """Wait until ``done()``, failing with ``process``'s error output if it ends first."""
    deadline = time.monotonic() + 60
    while not done():
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@contextmanager
def paused_migrator(url: str, tmp_path: Path) -> Iterator[None]:
    """A migrator stopped between its first migration and its second for as
    long as the block runs; it must then finish and succeed."""
    paused, resume = tmp_path / "paused", tmp_path / "resume"
    child = subprocess.Popen(
        [sys.executable, "-c", PAUSING_CHILD, url, str(paused), str(resume)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(paused.exists, child, "the migrator never reached its second migration")
        yield
    finally:
        resume.touch()
        _, err = child.communicate(timeout=120)
    assert child.returncode == 0, err[-2000:]


def test_a_migrating_node_holds_the_lock_between_two_migrations(
    fresh_url: str, tmp_path: Path
) -> None:
    with paused_migrator(fresh_url, tmp_path):
        free = migration_lock_is_free(fresh_url)
    assert not free, "between two migrations another node could read the version and run them too"
    assert_complete_and_current(fresh_url)


def _waiting_on_flock(pid: int) -> bool:
    """Whether ``pid`` waits for an ``flock`` (a ``->`` line of /proc/locks):
    blocked in the kernel, without SQLite's busy timeout."""
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields and "FLOCK" in fields and str(pid) in fields:
            return True
    return False


def test_a_node_starting_during_a_long_upgrade_waits_for_it_without_a_timeout(
    db_kind: str, fresh_url: str, tmp_path: Path
) -> None:
    if db_kind != "sqlite":
        pytest.skip("PostgreSQL's side: pg_advisory_lock waits without a timeout")
    upgrade = "import sys; from quatrix_mfa.storage import migrate; migrate.upgrade(sys.argv[1])"
    second = None
    try:
        with paused_migrator(fresh_url, tmp_path):
            second = subprocess.Popen(
                [sys.executable, "-c", upgrade, fresh_url], stderr=subprocess.PIPE, text=True
            )
            # Queued in the kernel, not polling SQLite's busy timeout (which
            # gives up after 30 s, however long the first node's upgrade takes).
            wait_for(lambda: _waiting_on_flock(second.pid), second, "it never queued")
    finally:
        err = second.communicate(timeout=120)[1] if second is not None else ""
    assert second is not None and second.returncode == 0, err[-2000:]
    assert_complete_and_current(fresh_url)
