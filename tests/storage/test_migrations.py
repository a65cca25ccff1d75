"""The Alembic history builds exactly the schema of storage/tables.py, and re-runs safely."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Engine, Integer, MetaData, Table, create_engine, inspect

from quatrix_mfa.core.bootstrap import bootstrap
from quatrix_mfa.core.context import Core
from quatrix_mfa.storage import migrate
from quatrix_mfa.storage.engine import normalize_url
from quatrix_mfa.storage.tables import metadata
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD


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
