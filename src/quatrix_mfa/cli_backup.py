"""``quatrix-mfa backup FILE`` and ``quatrix-mfa restore FILE | --check``.

SQLite: ``backup`` copies the database while the service runs with SQLite's
online backup API (https://sqlite.org/backup.html) in one step, which reads
one consistent snapshot (a WAL reader: writers go on meanwhile);
``restore`` checks the copy (schema, key file) and puts it in place only
when no process has the database open. PostgreSQL has its own tools
(``pg_dump`` / ``pg_restore``, README "Backups and restore"); ``restore
--check`` then verifies the restored database. Neither copy holds the key
file, without which the TOTP secrets cannot be read: both commands say so.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from quatrix_mfa.settings import PREFIX, Settings

KEY_FILE_NOTE = (
    "the backup does not hold the key file {key}: keep a copy of it (mode 0600) "
    "apart from the backup; without it the TOTP secrets cannot be read, and the "
    "two together open everything"
)


def _sqlite_file(settings: Settings, command: str) -> Path:
    from quatrix_mfa.startup import StartupError, sqlite_path

    path = sqlite_path(settings.effective_database_url)
    if path is None:
        raise StartupError(
            f"'{command}' copies a SQLite database; {PREFIX}DATABASE_URL is PostgreSQL: "
            f"use pg_dump / pg_restore, then 'quatrix-mfa restore --check' (README)"
        )
    return path


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    from quatrix_mfa.startup import StartupError, open_checked

    source = _sqlite_file(settings, "backup")
    target = Path(args.file).resolve()
    if target.exists():
        raise StartupError(f"{target} exists: choose a new file name (nothing is overwritten)")
    if not target.parent.is_dir():
        raise StartupError(f"the folder {target.parent} does not exist")
    open_checked(settings).dispose()
    partial = target.with_name(f".{target.name}.partial")
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    try:
        _copy(source, partial)
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    print(f"backup written to {target} ({target.stat().st_size} bytes)")
    print(KEY_FILE_NOTE.format(key=settings.key_file))
    return 0


def _copy(source: Path, target: Path) -> None:
    """One step of the online backup API: one consistent snapshot, taken as a
    WAL reader (writers are not held up), then checked."""
    reader = sqlite3.connect(source, timeout=30)
    writer = sqlite3.connect(target)
    try:
        reader.backup(writer)
        # The copy stands alone: no log beside it to lose.
        writer.execute("PRAGMA journal_mode=DELETE")
        (result,) = writer.execute("PRAGMA integrity_check").fetchone()
        if result != "ok":
            raise OSError(f"the copy failed its integrity check: {result}")
    finally:
        writer.close()
        reader.close()


def in_use(database: Path, url: str) -> str | None:
    """Why ``database`` is in use (a live node, or another connection), or None."""
    from sqlalchemy.exc import SQLAlchemyError

    from quatrix_mfa.storage.deployment import LIVE_SECONDS
    from quatrix_mfa.storage.engine import make_engine
    from quatrix_mfa.storage.keystate import KeyState

    engine = make_engine(url, pool_size=1)
    try:
        live = KeyState(engine).live_nodes(time.time(), LIVE_SECONDS)
    except SQLAlchemyError:  # no nodes table (an old or broken file): the lock decides
        live = []
    finally:
        engine.dispose()
    if live:
        names = ", ".join(node.node_id for node in live)
        return f"{len(live)} live node(s) use it ({names})"
    # A running service keeps connections open; each holds a shared lock on
    # the WAL index, so an exclusive lock cannot be had while one exists.
    probe = sqlite3.connect(database, timeout=0.2, isolation_level=None)
    try:
        probe.execute("PRAGMA locking_mode=EXCLUSIVE")
        probe.execute("BEGIN EXCLUSIVE")
        probe.execute("ROLLBACK")
    except sqlite3.OperationalError:
        return "another process has it open"
    finally:
        probe.close()
    return None


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    from quatrix_mfa.startup import StartupError, open_checked

    if args.check and args.file is not None:
        raise StartupError(
            "--check verifies the configured database, not a FILE: restore the FILE, "
            "or give --check alone"
        )
    if args.check:
        open_checked(settings).dispose()
        print(
            "the database is ready: its schema is this release's and the key file "
            f"{settings.key_file} opens its secrets"
        )
        return 0
    if args.file is None:
        raise StartupError("give the backup FILE to restore, or --check")
    database = _sqlite_file(settings, "restore")
    backup = Path(args.file).resolve()
    if not backup.is_file():
        raise StartupError(f"no backup at {backup}")
    if not settings.key_file.exists():
        raise StartupError(
            f"no key file at {settings.key_file}: copy the key file kept with the backup "
            f"there first (mode 0600); without it the TOTP secrets cannot be read"
        )
    database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if database.exists():
        why = in_use(database, settings.effective_database_url)
        if why:
            raise StartupError(
                f"refused: the database {database} is in use ({why}); stop every node first"
            )
    staged = database.with_name(f".{database.name}.restoring")
    os.close(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    try:
        try:
            _copy(backup, staged)
            _require_deployment(staged, backup)
        except sqlite3.DatabaseError as error:
            raise StartupError(
                f"{backup} is not a SQLite database this service can read ({error}); "
                "nothing was replaced"
            ) from None
        _check_copy(settings, staged)
        # The old database's log must not be applied to the restored file.
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{database}{suffix}").unlink()
        os.replace(staged, database)
    finally:
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()
    open_checked(settings).dispose()
    print(f"restored {backup} to {database}")
    print(
        f"the restored database is opened with the key file {settings.key_file}: it must "
        "be the one kept with this backup; start the service now"
    )
    return 0


def _require_deployment(staged: Path, backup: Path) -> None:
    """The copy is whole and a deployment of this service: an empty file, or
    another program's database, would be migrated into an empty schema and
    put every user, secret and session out of existence (found by review:
    ``restore`` of an empty file said "restored" and the service started
    with no one in it)."""
    from quatrix_mfa.startup import StartupError

    db = sqlite3.connect(staged)
    try:
        (health,) = db.execute("PRAGMA quick_check").fetchone()
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        ours = {"alembic_version", "accounts", "users"} <= tables
        version = db.execute("SELECT version_num FROM alembic_version").fetchone() if ours else None
        accounts = db.execute("SELECT count(*) FROM accounts").fetchone()[0] if ours else 0
    finally:
        db.close()
    if health != "ok":
        raise StartupError(f"{backup} is damaged ({health}); nothing was replaced")
    if version is None or not accounts:
        raise StartupError(
            f"{backup} is not a backup of quatrix-mfa (no schema version or no account in "
            "it); nothing was replaced"
        )


def _check_copy(settings: Settings, staged: Path) -> None:
    """The copy fits this release and the key file opens its secrets, before
    anything is replaced."""
    from dataclasses import replace

    from quatrix_mfa.startup import open_checked

    # A backup from an older release is migrated here; a newer one is refused.
    open_checked(replace(settings, database_url=f"sqlite:///{staged}"), upgrade=True).dispose()


def register(commands: Any) -> None:
    """backup, restore."""
    backup = commands.add_parser(
        "backup", help="SQLite: write a consistent copy of the database while it serves"
    )
    backup.add_argument("file", metavar="FILE")
    backup.set_defaults(func=cmd_backup)
    restore = commands.add_parser(
        "restore",
        help="SQLite: put a backup in place (not while in use); --check: verify the database",
    )
    restore.add_argument("file", metavar="FILE", nargs="?")
    restore.add_argument(
        "--check",
        action="store_true",
        help="verify the configured database (e.g. after pg_restore): schema and keys",
    )
    restore.set_defaults(func=cmd_restore)
