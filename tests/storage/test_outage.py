"""Which database errors are outages (503, try again) and which are faults
(500): with the real drivers, a real read-only SQLite file and a real
PostgreSQL port nobody listens on (issue 15, item 5)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from quatrix_mfa.core.errors import StoreUnavailable
from quatrix_mfa.settings import Settings
from quatrix_mfa.storage.engine import CONNECT_SECONDS, make_engine
from quatrix_mfa.storage.outage import outage_reason
from quatrix_mfa.storage.store import SqlStore
from tests.conftest import Api, error, only_on
from tests.servers import free_port
from tests.support.scenario import ADMIN_EMAIL, ADMIN_PASSWORD


def read_only_url(database_url: str) -> str:
    """The same SQLite file opened read-only, as after a disk turned read-only."""
    path = Path(database_url.removeprefix("sqlite:///"))
    return f"sqlite:///file:{path}?mode=ro&uri=true"


def failure(url: str, sql: str) -> SQLAlchemyError:
    engine = make_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql))
    except SQLAlchemyError as caught:
        return caught
    finally:
        engine.dispose()
    raise AssertionError(f"{sql} did not fail")


@only_on("sqlite", "a SQLite file opened read-only")
def test_a_write_to_a_read_only_sqlite_file_is_an_outage(database_url: str) -> None:
    caught = failure(read_only_url(database_url), "DELETE FROM audit_log")
    assert outage_reason(caught) == "readonly database"


@only_on("sqlite", "SQLite's own messages")
def test_a_bad_statement_or_constraint_is_a_fault_not_an_outage(database_url: str) -> None:
    assert outage_reason(failure(database_url, "SELECT * FROM no_such_table")) is None
    engine = make_engine(database_url, pool_size=1)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (a INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    engine.dispose()
    assert outage_reason(failure(database_url, "INSERT INTO t VALUES (1)")) is None


def test_a_postgresql_nobody_listens_on_is_an_outage_reported_within_the_connect_timeout() -> None:
    started = time.monotonic()
    caught = failure(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", "SELECT 1")
    assert time.monotonic() - started < CONNECT_SECONDS + 1
    assert outage_reason(caught) == "database unreachable"


@only_on("sqlite", "a SQLite file opened read-only")
def test_a_unit_of_work_on_a_read_only_sqlite_file_raises_store_unavailable(
    database_url: str,
) -> None:
    store = SqlStore.from_url(read_only_url(database_url), 1)
    try:
        with pytest.raises(StoreUnavailable), store.transaction() as tx:
            tx.conn.execute(text("DELETE FROM audit_log"))
    finally:
        store.dispose()


@only_on("sqlite", "a SQLite file opened read-only")
def test_a_read_only_sqlite_database_answers_503_and_changes_nothing(
    api: Api, make_api: Any, settings: Settings
) -> None:
    admin = api.full_session()
    read_only = make_api(database_url=read_only_url(settings.database_url))
    # Reading still works: the file is there, only writing is refused.
    assert read_only.get("/profile", admin).status_code == 200
    for answer in (
        read_only.login(ADMIN_EMAIL, ADMIN_PASSWORD),
        read_only.post("/user/create", {"name": "New", "email": "new@example.com"}, admin),
    ):
        error(answer, 503, -1)
        assert int(answer.headers["Retry-After"]) > 0
    users = api.get("/user", admin).json()
    assert "new@example.com" not in [user["email"] for user in users]
