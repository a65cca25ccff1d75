"""The Alembic history builds exactly the schema of storage/tables.py, and re-runs safely."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Engine, Integer, MetaData, Table, create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from quatrix_mfa.core.bootstrap import bootstrap
from quatrix_mfa.core.context import Core
from quatrix_mfa.core.model import Credential
from quatrix_mfa.storage import migrate
from quatrix_mfa.storage.engine import normalize_url
from quatrix_mfa.storage.store import SqlStore
from quatrix_mfa.storage.tables import metadata
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PG_ADMIN_URL


@pytest.fixture
def migrated_url(db_kind: str, database_url: str, tmp_path: Path) -> str:
    """SQLite: a brand-new file migrated here; PostgreSQL: the run's database,
    migrated from empty when the session started (the migrations create it)."""
    if db_kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
        migrate.upgrade(url)
        return url
    return database_url


def schema_diff(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))


def test_migrations_build_exactly_the_declared_schema(migrated_url: str) -> None:
    engine = create_engine(normalize_url(migrated_url))
    try:
        assert schema_diff(engine) == []
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert set(metadata.tables) <= tables
    assert tables - set(metadata.tables) == {"alembic_version"}


def test_schema_comparison_notices_a_difference(migrated_url: str) -> None:
    # Guards the guard: a table the migrations never made shows up in the diff.
    extra = MetaData()
    Table("not_migrated", extra, Column("id", Integer, primary_key=True))
    engine = create_engine(normalize_url(migrated_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn)
            diff = compare_metadata(context, extra)
    finally:
        engine.dispose()
    added = [entry[1].name for entry in diff if entry[0] == "add_table"]
    assert added == ["not_migrated"]


def test_upgrade_twice_is_a_no_op(migrated_url: str) -> None:
    engine = create_engine(normalize_url(migrated_url))
    try:
        assert migrate.is_current(engine)
        with engine.connect() as conn:
            before = MigrationContext.configure(conn).get_current_revision()
        migrate.upgrade(migrated_url)
        migrate.upgrade(migrated_url)
        with engine.connect() as conn:
            after = MigrationContext.configure(conn).get_current_revision()
        assert migrate.is_current(engine)
        assert before is not None and before == after
        assert schema_diff(engine) == []
    finally:
        engine.dispose()


def test_upgrade_keeps_existing_rows(database_url: str, core: Core) -> None:
    bootstrap(core, ADMIN_EMAIL, "Example", ADMIN_PASSWORD)
    migrate.upgrade(database_url)
    with core.store.transaction(write=False) as tx:
        assert tx.users.by_email(ADMIN_EMAIL) is not None


@pytest.fixture
def empty_url(db_kind: str, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all: a new SQLite file, or a new PostgreSQL database."""
    if db_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    name = f"qmfa_old_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_0002_carries_factors_into_credentials_and_keeps_sessions(empty_url: str) -> None:
    """A database made by the first schema, with a TOTP seed, a PIN, recovery
    codes and a session, upgraded: the seed and the PIN hash are credentials,
    nothing else moved, and the session still reads, under epoch 0."""
    command.upgrade(migrate.alembic_config(empty_url), "0001")
    engine = create_engine(normalize_url(empty_url))
    user = {
        "id": "u" * 36,
        "account_id": "a" * 36,
        "email": "old@example.com",
        "name": "old",
        "created": 1.0,
        "modified": 2.0,
        "super_admin": True,
        "status": "A",
        "language": "eng",
        "password_hash": "$argon2id$password",
        "twofa_active": True,
        "twofa_forced": False,
        "pin_hash": "$argon2id$pin",
        "pin_forced": True,
        "last_login": 3.0,
    }
    account = {"id": "a" * 36, "name": "Old", "created": 1.0, "modified": 1.0, "status": "A"}
    account |= {"force_2fa": False, "ip_restricted": False, "ip_whitelist": [], "settings": {}}
    old = MetaData()
    old.reflect(engine)
    try:
        with engine.begin() as conn:
            conn.execute(old.tables["accounts"].insert(), account)
            conn.execute(old.tables["users"].insert(), user)
            conn.execute(
                old.tables["totp_secrets"].insert(),
                {
                    "user_id": user["id"],
                    "credential_id": "c" * 36,
                    "ciphertext": b"\x00sealed\xff",
                    "key_id": "k1",
                    "created": 4.0,
                    "last_step": 99,
                },
            )
            conn.execute(
                old.tables["recovery_codes"].insert(),
                [{"user_id": user["id"], "code_hash": h} for h in ("a" * 64, "b" * 64)],
            )
            conn.execute(
                old.tables["sessions"].insert(),
                {
                    "token_hash": "t" * 64,
                    "user_id": user["id"],
                    "created": 5.0,
                    "last_seen": 6.0,
                    "expires_at": 7.0,
                    "steps": "",
                    "failures": 0,
                },
            )
        migrate.upgrade(empty_url)
        assert schema_diff(engine) == []
        store = SqlStore(engine)
        with store.transaction(write=False) as tx:
            totp = tx.credentials.of_user(user["id"], "totp")
            pin = tx.credentials.of_user(user["id"], "pin")
            found = tx.sessions.get_with_owner("t" * 64)
            codes_left = tx.credentials.recovery_codes_left(user["id"])
    finally:
        engine.dispose()
    assert totp == [Credential("c" * 36, user["id"], "totp", b"\x00sealed\xff", "k1", 4.0, 99)]
    assert [(c.secret, c.key_id, c.created) for c in pin] == [(b"$argon2id$pin", None, 2.0)]
    assert codes_left == 2
    assert found is not None
    session, migrated, _ = found
    assert (session.epoch, session.auth_time, session.factors) == (0, 5.0, ("password",))
    assert migrated.enrolled == {"totp", "pin"} and migrated.credential_epoch == 0
    assert (migrated.password_hash, migrated.twofa_active, migrated.pin_forced) == (
        "$argon2id$password",
        True,
        True,
    )


def test_0005_makes_emails_unique_per_account_and_downgrades_cleanly(empty_url: str) -> None:
    """A database at 0004 with users, a password link and a session, upgraded:
    everything reads, one email may then be in two accounts (once with a
    password); downgraded again: the rows are kept, the service-wide unique
    email is back, and a pending email change goes with its column."""
    config = migrate.alembic_config(empty_url)
    command.upgrade(config, "0004")
    engine = create_engine(normalize_url(empty_url))
    account = {"id": "a" * 36, "name": "Old", "created": 1.0, "modified": 1.0, "status": "A"}
    account |= {"force_2fa": False, "ip_restricted": False, "ip_whitelist": [], "settings": {}}
    user = {"id": "u" * 36, "account_id": "a" * 36, "email": "old@example.com", "name": "old"}
    user |= {"created": 1.0, "modified": 2.0, "super_admin": True, "status": "A"}
    user |= {"language": "eng", "password_hash": "$argon2id$password", "twofa_active": False}
    user |= {"twofa_forced": False, "pin_forced": False}
    link = {"id_hash": "h" * 64, "user_id": "u" * 36, "created": 1.0, "expires_at": 9.0}
    link |= {"email_hash": "e" * 64}
    other = {**account, "id": "b" * 36, "name": "Other"}
    twin = {**user, "id": "v" * 36, "account_id": "b" * 36, "password_hash": None}
    try:
        old = MetaData()
        old.reflect(engine)
        with engine.begin() as conn:
            conn.execute(old.tables["accounts"].insert(), [account, other])
            conn.execute(old.tables["users"].insert(), user)
            conn.execute(old.tables["password_resets"].insert(), link)
        migrate.upgrade(empty_url)
        assert schema_diff(engine) == []
        store = SqlStore(engine)
        with store.transaction() as tx:
            assert tx.resets.get("h" * 64) is not None
            kept = tx.users.by_email("old@example.com")
            assert kept is not None and kept.password_hash == "$argon2id$password"
        users = metadata.tables["users"]
        with engine.begin() as conn:
            conn.execute(users.insert(), twin)  # another account: allowed
            # A second sign-in identity with that email: refused.
            with pytest.raises(IntegrityError), conn.begin_nested():
                twin_row = users.c.id == "v" * 36
                conn.execute(users.update().where(twin_row), {"password_hash": "$argon2id$twin"})
        with pytest.raises(RuntimeError, match=r"old@example\.com"):
            command.downgrade(config, "0004")  # refused while an email is shared
        with engine.begin() as conn:
            conn.execute(users.delete().where(users.c.id == "v" * 36))
            pending = {**link, "id_hash": "p" * 64, "new_email": "new@example.com"}
            conn.execute(metadata.tables["password_resets"].insert(), pending)
        command.downgrade(config, "0004")
        with engine.connect() as conn:
            hashes = sorted(
                r.id_hash for r in conn.execute(text("SELECT id_hash FROM password_resets"))
            )
            emails = [r.email for r in conn.execute(text("SELECT email FROM users"))]
        assert hashes == ["h" * 64] and emails == ["old@example.com"]
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(old.tables["users"].insert(), twin)  # unique per service again
        migrate.upgrade(empty_url)
        assert schema_diff(engine) == []
    finally:
        engine.dispose()
