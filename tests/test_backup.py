"""Issue 15, item 3: ``quatrix-mfa backup FILE`` while the service runs under
write load, ``restore FILE`` into a fresh data folder (and never over a
database in use), ``restore --check`` for a database restored by other
means (PostgreSQL's pg_restore)."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quatrix_mfa.keys import create_key_file
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, only_on
from tests.support.load import Load, serving
from tests.support.shell import Cli, in_process_apis
from tests.support.shell import cli as cli  # the fixture


@pytest.fixture
def apis() -> Iterator[Any]:
    """In-process apps on a CLI's data folder (tests/support/shell.py)."""
    with in_process_apis() as open_:
        yield open_


def one_line_error(result: Any, *words: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@only_on("sqlite", "backup and restore copy a SQLite file")
def test_backup_under_write_load_restores_into_a_fresh_folder_with_everything_working(
    tmp_path: Path, apis: Any
) -> None:
    origin = Cli(tmp_path / "origin", None)
    origin.init()
    api = apis(origin)
    admin = api.full_session()
    admin, secret, recovery = api.enroll_totp(admin)
    bob_token = api.scenario.user(admin, "bob@example.com", "bob's long password").token
    backup = tmp_path / "backups" / "mfa.db"
    backup.parent.mkdir()

    with serving(origin, tmp_path / "serve.log") as base:
        with Load(f"{base}/api/1.0", sign_in_with_totp(api, secret)).running() as load:
            time.sleep(1.0)
            started = time.monotonic()
            made = origin.run("backup", str(backup))
            time.sleep(0.5)
        # Refused while the service runs: its node is live, its connections open.
        refused = Cli(tmp_path / "origin", None).run("restore", str(backup))
        one_line_error(refused, "in use")
    assert made.returncode == 0, made.stderr
    assert "keys.json" in made.stdout and "TOTP" in made.stdout
    assert oct(backup.stat().st_mode & 0o777) == "0o600"
    written_during = [a for a in load.answers if a.kind == "write" and a.status == 201]
    assert any(a.at > started for a in written_during), "no write ran during the backup"

    fresh = Cli(tmp_path / "fresh", None)
    fresh.data_dir.mkdir(mode=0o700)
    shutil.copy2(origin.data_dir / "keys.json", fresh.data_dir / "keys.json")
    restored = fresh.run("restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert "keys.json" in restored.stdout

    again = apis(fresh)
    # Every session of before is open, and works.
    assert again.get("/session/login", admin).status_code == 200
    assert again.get("/profile", bob_token).status_code == 200
    # The TOTP secret opens with the copied key file; a recovery code still works once.
    again.clock.advance(30)
    pending = again.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert pending.status_code == 207
    full = again.post(
        "/session/login",
        {"auth_type": "2FA", "code": again.code(secret)},
        pending.json()["session_id"],
    )
    assert full.status_code == 200, full.text
    pending = again.login(ADMIN_EMAIL, ADMIN_PASSWORD).json()["session_id"]
    by_recovery = again.post("/session/login", {"auth_type": "2FA", "code": recovery[0]}, pending)
    assert by_recovery.status_code == 200, by_recovery.text
    assert again.login("bob@example.com", "bob's long password").status_code == 200
    # Users made before the backup began are in it; the copy passed its check.
    before = {a.email for a in written_during if a.at + a.seconds < started}
    emails = {u["email"] for u in again.get("/user", admin).json()}
    assert before <= emails
    assert fresh.scalar("PRAGMA integrity_check") == "ok"


def sign_in_with_totp(api: Api, secret: str) -> str:
    api.clock.advance(30)
    pending = api.login(ADMIN_EMAIL, ADMIN_PASSWORD).json()["session_id"]
    full = api.post("/session/login", {"auth_type": "2FA", "code": api.code(secret)}, pending)
    assert full.status_code == 200, full.text
    return str(full.json()["session_id"])


@only_on("sqlite", "a SQLite file")
def test_restore_refuses_a_copy_the_key_file_does_not_open_and_changes_nothing(
    tmp_path: Path,
) -> None:
    origin = Cli(tmp_path / "origin", None)
    origin.init()
    backup = tmp_path / "mfa.db"
    assert origin.run("backup", str(backup)).returncode == 0
    other = Cli(tmp_path / "other", None)
    other.init()
    before = (other.data_dir / "quatrix-mfa.db").read_bytes()
    one_line_error(other.run("restore", str(backup)))
    assert (other.data_dir / "quatrix-mfa.db").read_bytes() == before
    assert other.run("restore", "--check").returncode == 0


def _foreign(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE x (a)")
        db.commit()


def _cut(path: Path, source: Path) -> None:
    path.write_bytes(source.read_bytes()[:5000])


@only_on("sqlite", "a SQLite file")
@pytest.mark.parametrize(
    ("what", "make", "words"),
    [
        ("an empty file", lambda path, _: path.write_bytes(b""), ["not a backup of quatrix-mfa"]),
        ("another program's database", lambda path, _: _foreign(path), ["not a backup"]),
        ("text", lambda path, _: path.write_text("garbage"), ["not a SQLite database"]),
        ("a cut-off copy", _cut, ["nothing was replaced"]),
    ],
)
def test_restore_refuses_what_is_no_backup_of_a_deployment_and_changes_nothing(
    tmp_path: Path, what: str, make: Any, words: list[str]
) -> None:
    # Found by review: an empty file was migrated into an empty schema, put in
    # place of the database with every user in it, and reported "restored".
    origin = Cli(tmp_path / "origin", None)
    origin.init()
    good = tmp_path / "good.db"
    assert origin.run("backup", str(good)).returncode == 0
    bad = tmp_path / "bad.db"
    make(bad, good)
    before = (origin.data_dir / "quatrix-mfa.db").read_bytes()
    one_line_error(origin.run("restore", str(bad)), *words)
    assert (origin.data_dir / "quatrix-mfa.db").read_bytes() == before, what
    assert "1 user" in origin.run("user", "list").stdout


@only_on("sqlite", "a SQLite file")
def test_restore_check_with_a_file_is_refused_rather_than_checking_something_else(
    tmp_path: Path,
) -> None:
    origin = Cli(tmp_path / "origin", None)
    origin.init()
    garbage = tmp_path / "garbage.db"
    garbage.write_text("garbage")
    one_line_error(origin.run("restore", str(garbage), "--check"), "--check")


@only_on("sqlite", "a SQLite file")
def test_backup_never_overwrites_a_file(tmp_path: Path) -> None:
    origin = Cli(tmp_path / "origin", None)
    origin.init()
    existing = tmp_path / "kept"
    existing.write_text("mine")
    one_line_error(origin.run("backup", str(existing)), "exists")
    assert existing.read_text() == "mine"


@only_on("postgresql", "PostgreSQL has pg_dump and pg_restore")
def test_on_postgresql_backup_points_to_pg_dump_and_restore_check_verifies(
    cli: Cli, tmp_path: Path
) -> None:
    cli.init()
    one_line_error(cli.run("backup", str(tmp_path / "x.db")), "pg_dump")
    one_line_error(cli.run("restore", str(tmp_path / "x.db")), "pg_dump")
    checked = cli.run("restore", "--check")
    assert checked.returncode == 0, checked.stderr
    assert "ready" in checked.stdout
    # Another deployment's key file does not open this database's secrets.
    (cli.data_dir / "keys.json").unlink()
    create_key_file(cli.data_dir / "keys.json")
    one_line_error(cli.run("restore", "--check"))
