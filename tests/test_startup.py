"""Issue 16 (items 1, 2, 4, 5, 6) and issue 15 item 9 with the real command:
every refusal is exit status 2, one line on stderr naming the cause (no
traceback, no password) and nothing written."""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_EMAIL, only_on
from tests.servers import free_port, wait_healthy
from tests.support.revisions import HEAD, NEXT, TWO_BACK
from tests.support.shell import Cli, refused
from tests.support.shell import cli as cli  # the fixture

# Free when the module is read; every use is refused before it would listen.
PORT = str(free_port())
COMMANDS = [
    ["serve", "--port", PORT],
    ["outbox"],
    ["audit"],
    ["rotate-key"],
    ["keys", "add"],
    ["keys", "status"],
    ["keys", "activate", "k1"],
]


def snapshot(cli: Cli) -> dict[str, Any]:
    """What a refused command must leave as it was: every file of the data
    folder (SQLite's database among them) and, on PostgreSQL, the rows."""
    files = {
        str(p.relative_to(cli.data_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(cli.data_dir.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm", ".lock"))
    }
    rows = {
        table: cli.scalar(f"SELECT count(*) FROM {table}")
        for table in ("users", "key_checks", "nodes", "credentials", "audit_log")
    }
    return {"files": files, "rows": rows}


def test_no_command_but_init_makes_keys_or_starts_without_them(cli: Cli) -> None:
    cli.init()
    key_file = cli.data_dir / "keys.json"
    key_file.rename(cli.data_dir.parent / "moved-away.json")
    before = snapshot(cli)
    for command in COMMANDS:
        line = refused(cli.run(*command), str(key_file), "missing")
        assert "restore it from the backup" in line
        assert not key_file.exists()
    assert snapshot(cli) == before


def test_init_refuses_a_database_with_users_but_no_key_file(cli: Cli) -> None:
    cli.init()
    key_file = cli.data_dir / "keys.json"
    key_file.unlink()
    before = snapshot(cli)
    refused(cli.run("init", "--email", "other@example.com"), str(key_file), "already has users")
    assert not key_file.exists()
    assert snapshot(cli) == before


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("", "corrupt"),
        ("{", "corrupt"),
        ('{"active": "k1", "keys": {}}', "corrupt"),
        ('{"active": "k9", "keys": {"k1": "AAAA"}, "hmac": "AAAA"}', "corrupt"),
    ],
)
def test_a_corrupt_key_file_is_one_line(cli: Cli, content: str, why: str) -> None:
    cli.init()
    key_file = cli.data_dir / "keys.json"
    key_file.write_text(content)
    before = snapshot(cli)
    for command in (
        ["serve", "--port", PORT],
        ["keys", "status"],
        ["init", "--email", ADMIN_EMAIL],
    ):
        refused(cli.run(*command), str(key_file), why)
    assert snapshot(cli) == before


def test_the_key_file_must_be_private(cli: Cli) -> None:
    cli.init()
    key_file = cli.data_dir / "keys.json"
    key_file.chmod(0o644)
    refused(cli.run("keys", "status"), str(key_file), "0644", "0600 or 0400")
    key_file.chmod(0o400)  # a mounted secret, read-only
    assert cli.run("keys", "status").returncode == 0


def test_the_key_file_can_be_a_mounted_secret_elsewhere(cli: Cli, tmp_path: Path) -> None:
    mounted = tmp_path / "secrets" / "mfa-keys.json"
    result = cli.run("init", "--email", ADMIN_EMAIL, KEYS_FILE=str(mounted))
    assert result.returncode == 0, result.stderr
    assert not (cli.data_dir / "keys.json").exists()
    assert stat.S_IMODE(mounted.stat().st_mode) == 0o600
    assert cli.run("keys", "status", KEYS_FILE=str(mounted)).returncode == 0
    refused(cli.run("keys", "status"), str(cli.data_dir / "keys.json"), "missing")


def test_another_deployments_key_file_is_refused(cli: Cli, tmp_path: Path) -> None:
    """A second node given the key file of another deployment (on PostgreSQL:
    a node of another cluster pointed at this database)."""
    cli.init()
    other = Cli(tmp_path / "other", None)
    other.init()
    foreign = other.data_dir / "keys.json"
    before = snapshot(cli)
    for command in (["serve", "--port", str(free_port())], ["keys", "add"], ["rotate-key"]):
        line = refused(cli.run(*command, KEYS_FILE=str(foreign)), str(foreign))
        assert "not this database's" in line
    assert snapshot(cli) == before


def test_new_files_are_private_whatever_the_umask(cli: Cli) -> None:
    result = subprocess.run(
        [*cli_command(), "init", "--email", ADMIN_EMAIL],
        env=cli.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=lambda: os.umask(0),
    )
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(cli.data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((cli.data_dir / "keys.json").stat().st_mode) == 0o600
    if cli.database_url is None:
        for name in ("quatrix-mfa.db", "quatrix-mfa.db-wal"):
            path = cli.data_dir / name
            if path.exists():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, name


def cli_command() -> list[str]:
    from tests.servers import CLI

    return list(CLI)


def test_an_unreachable_database_is_one_line_with_host_port_and_no_password(
    cli: Cli,
) -> None:
    cli.init()
    url = "postgresql://mfa:hunter2secret@127.0.0.1:1/mfa"
    for command in (["serve", "--port", PORT], ["keys", "status"], ["migrate"]):
        line = refused(cli.run(*command, DATABASE_URL=url), "127.0.0.1:1", "refused")
        assert "hunter2secret" not in line


@only_on("postgresql", "wrong credentials need a server that checks them")
def test_wrong_database_credentials_are_one_line(cli: Cli) -> None:
    cli.init()
    assert cli.database_url is not None
    tail = cli.database_url.partition("://")[2]
    wrong = f"postgresql://no_such_role_16:hunter2secret@{tail.split('@', 1)[-1]}"
    line = refused(cli.run("keys", "status", DATABASE_URL=wrong), "no_such_role_16")
    assert "hunter2secret" not in line


def test_a_typo_in_the_database_scheme_is_one_line_naming_the_variable(cli: Cli) -> None:
    result = cli.run("serve", DATABASE_URL="postgresq://mfa:hunter2secret@db/mfa")
    line = refused(result, "QUATRIX_MFA_DATABASE_URL")
    assert "hunter2secret" not in line


def test_a_port_in_use_is_one_line(cli: Cli) -> None:
    cli.init()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused(cli.run("serve", "--port", str(port)), f"port {port}", "in use")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["serve", "--port", "99999"], "--port"),
        (["serve", "--workers", "0"], "--workers"),
        (["serve", "--wait-for-db", "-1"], "--wait-for-db"),
        (["outbox", "--limit", "x"], "--limit"),
    ],
)
def test_bad_options_are_one_line(cli: Cli, args: list[str], named: str) -> None:
    refused(cli.run(*args), named)
    assert not cli.data_dir.exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PUBLIC_URL", "https://mfa.example.com/?next=x"),
        ("MAIL_FROM", "a@b@c"),
        ("SESSION_IDLE_SECONDS", "50000"),
        ("ARGON2_PARALLELISM", "16"),  # 64 KiB of memory in the test environment
    ],
)
def test_settings_wrong_alone_or_together_are_refused_at_start(
    cli: Cli, name: str, value: str
) -> None:
    refused(cli.run("serve", "--port", PORT, **{name: value}), f"QUATRIX_MFA_{name}")
    assert not cli.data_dir.exists()


def test_an_unknown_variable_is_warned_about(cli: Cli) -> None:
    cli.init()
    result = cli.run("keys", "status", SESION_IDLE_SECONDS="60")
    assert result.returncode == 0, result.stderr
    assert "QUATRIX_MFA_SESION_IDLE_SECONDS" in result.stderr
    assert "typo" in result.stderr


def test_help_texts_are_plain(cli: Cli) -> None:
    for command in ([], ["serve"], ["init"], ["migrate"], ["keys"], ["keys", "activate"]):
        result = cli.run(*command, "--help")
        assert result.returncode == 0, result.stderr
        assert "``" not in result.stdout and ":class:" not in result.stdout, result.stdout


@only_on("sqlite", "the data folder is written only with SQLite")
def test_an_unwritable_data_folder_is_one_line(cli: Cli) -> None:
    """A data folder no write reaches, even root's (the tests run as root, for
    whom modes do not stop a write): sysfs refuses to create files."""
    cli.init()
    unwritable = "/sys"
    result = cli.run(
        "serve",
        "--port",
        PORT,
        DATA_DIR=unwritable,
        KEYS_FILE=str(cli.data_dir / "keys.json"),
        DATABASE_URL=f"sqlite:///{unwritable}/quatrix-mfa.db",
    )
    refused(result, unwritable, "not writable")


def test_a_schema_one_version_ahead_serves_and_an_older_code_refuses(cli: Cli) -> None:
    """Expand-then-contract: a newer release's migration says which code still
    works on it (schema_compat); code older than that refuses with both versions."""
    cli.init()
    oldest = cli.scalar("SELECT oldest_code_revision FROM schema_compat")
    try:
        newer_schema(cli, oldest_code=HEAD)
        assert cli.run("keys", "status").returncode == 0
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        process = subprocess.Popen(
            [*cli_command(), "serve", "--port", str(port)],  # migrating is skipped: newer
            env=cli.env(PUBLIC_URL=base),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_healthy(base, process)
            ready = httpx.get(f"{base}/readyz", timeout=5)
            assert ready.status_code == 200, ready.text
        finally:
            process.terminate()
            process.wait(timeout=20)
        assert cli.scalar("SELECT version_num FROM alembic_version") == NEXT
        newer_schema(cli, oldest_code=NEXT)
        line = refused(cli.run("keys", "status"), NEXT, HEAD)
        assert "newer than this code's" in line
        refused(cli.run("migrate"), NEXT, HEAD)
    finally:  # the PostgreSQL run shares one database between tests
        run_sql(
            cli,
            [
                f"UPDATE alembic_version SET version_num = '{HEAD}'",
                f"UPDATE schema_compat SET oldest_code_revision = '{oldest}'",
            ],
        )


def newer_schema(cli: Cli, oldest_code: str) -> None:
    """The database as a next release's migration would leave it."""
    run_sql(
        cli,
        [
            f"UPDATE alembic_version SET version_num = '{NEXT}'",
            "DELETE FROM schema_compat",
            f"INSERT INTO schema_compat (id, oldest_code_revision) VALUES (1, '{oldest_code}')",
        ],
    )


def run_sql(cli: Cli, statements: list[str]) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(cli.effective_url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def test_migrate_takes_the_schema_back_and_forth(cli: Cli) -> None:
    """Two revisions back (each one's downgrade runs), refused by serve, and up again."""
    cli.init()
    try:
        down = cli.run("migrate", "--to", TWO_BACK)
        assert down.returncode == 0, down.stderr
        assert cli.scalar("SELECT version_num FROM alembic_version") == TWO_BACK
        refused(cli.run("serve", "--port", PORT, "--no-migrate"), TWO_BACK, "quatrix-mfa migrate")
    finally:  # the PostgreSQL run shares one database between tests
        up = cli.run("migrate")
    assert up.returncode == 0, up.stderr
    assert cli.scalar("SELECT version_num FROM alembic_version") == HEAD
    assert cli.scalar("SELECT count(*) FROM users") == 1


def test_a_downgrade_through_a_revision_without_one_is_refused_before_any_step(cli: Cli) -> None:
    """On SQLite each step of a downgrade commits on its own: a path that met
    0002 (no downgrade) halfway left the schema half taken back, tables gone."""
    cli.init()
    refused(cli.run("migrate", "--to", "0001"), "0002", "no downgrade", "nothing was changed")
    assert cli.scalar("SELECT version_num FROM alembic_version") == HEAD
    assert cli.scalar("SELECT count(*) FROM trusted_devices") == 0  # the table is still there
    assert cli.scalar("SELECT count(*) FROM users") == 1
