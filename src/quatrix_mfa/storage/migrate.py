"""Schema migrations with Alembic, run from code (``migrate``, ``init`` and
``serve`` unless ``--no-migrate``).

Migrations are expand-then-contract (README, "Upgrades"): each one records in
``schema_compat`` the oldest code revision that still works on the schema it
leaves, so the previous release keeps serving, and reports ready, on a schema
one version ahead, and older code refuses with one line naming both versions.
"""

from __future__ import annotations

import fcntl
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from quatrix_mfa.storage.engine import normalize_url

MIGRATIONS = Path(__file__).with_name("migrations")

# Any constant: every node that migrates a PostgreSQL database takes this
# advisory lock for the whole run (SQLite: sqlite_migration_queue, for the same span).
MIGRATION_LOCK = 7_310_420_001


@contextmanager
def sqlite_migration_queue(database: str | None) -> Iterator[None]:
    """On an SQLite file (``database``, from ``engine.sqlite_file``): wait, for
    as long as it takes, for any other process migrating it, on an ``flock``
    of a file beside it; PostgreSQL's advisory lock waits the same way. The
    write lock alone (which the run also holds, from reading the version to
    the end) is given up on after SQLite's busy timeout: a second node started
    during an upgrade longer than 30 s failed with "database is locked".
    Without a file (None), nothing."""
    if database is None:
        yield
        return
    fd = os.open(f"{database}-migrate.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # which gives up the lock


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # '%' is ConfigParser interpolation; escape it in passwords.
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


class SchemaError(Exception):
    """The database's schema does not fit this code; one line saying what to do."""


def upgrade(url: str, to: str = "head") -> None:
    """Bring the database to the latest schema (a no-op when it is there)."""
    command.upgrade(alembic_config(url), to)


def downgrade(url: str, to: str) -> None:
    """Take the schema back to revision ``to`` (``migrate --to REV``)."""
    command.downgrade(alembic_config(url), to)


def without_downgrade(current: str, to: str) -> list[str]:
    """The revisions a downgrade from ``current`` to ``to`` would undo that
    cannot be undone (their module says ``downgradable = False``). Checked
    before anything runs, so that the refusal names them (a run is one
    transaction on both databases: one failing halfway would roll back)."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return sorted(
        rev.revision
        for rev in script.iterate_revisions(current, to)
        if rev.revision != to and not getattr(rev.module, "downgradable", True)
    )


@functools.cache
def known_revisions() -> frozenset[str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return frozenset(rev.revision for rev in script.walk_revisions())


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        conn.info["begin"] = "BEGIN"  # a read: no write lock on SQLite
        return MigrationContext.configure(conn).get_current_revision()


def schema_problem(engine: Engine) -> str | None:
    """Why this code cannot serve the database's schema, or None.

    Fine: the schema is at this code's head, or at a newer revision whose
    ``schema_compat`` row says this code's head still works on it."""
    revision = current_revision(engine)
    head = head_revision()
    if revision == head:
        return None
    if revision is None:
        return "the database has no schema yet: run 'quatrix-mfa migrate' (or 'init')"
    if revision in known_revisions():
        return (
            f"the database schema is at revision {revision}, older than this code's {head}: "
            f"run 'quatrix-mfa migrate'"
        )
    oldest = _oldest_code_revision(engine)
    if oldest is not None and oldest in known_revisions():
        return None  # one version ahead, written to keep this code working
    return (
        f"the database schema is at revision {revision}, newer than this code's {head} "
        f"(it needs code at revision {oldest or revision} or later): upgrade this node's "
        f"code, or take the schema back with 'quatrix-mfa migrate --to {head}' run by the "
        f"newer release"
    )


def _oldest_code_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        conn.info["begin"] = "BEGIN"  # a read: no write lock on SQLite
        if not inspect(conn).has_table("schema_compat"):
            return None
        found = conn.execute(
            text("SELECT oldest_code_revision FROM schema_compat WHERE id = 1")
        ).scalar()
    return None if found is None else str(found)


@functools.cache
def head_revision() -> str | None:
    """The newest migration shipped with this version (read once)."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def is_current(engine: Engine) -> bool:
    """True if this code can serve the database's schema (``schema_problem``)."""
    return schema_problem(engine) is None
