"""Prepared statements (storage/prepared.py) give what SQLAlchemy's own execution
gives, on every database: the same rows and types, the caller's transaction,
the engine's statement listeners; and refuse what they cannot run."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import bindparam, event, insert, select

from quatrix_mfa.core.context import Core
from quatrix_mfa.core.model import Account, User
from quatrix_mfa.storage.prepared import Prepared
from quatrix_mfa.storage.store import SqlStore
from quatrix_mfa.storage.tables import accounts, audit_log, throttle, users
from tests.support.storage import NOW, Boom, new_user

_OWNER = (
    select(users, accounts)
    .join(accounts, accounts.c.id == users.c.account_id)
    .where(users.c.id == bindparam("b_id"))
)


@pytest.fixture
def user(core: Core, account: Account) -> User:
    with core.store.transaction() as tx:
        return new_user(tx, account, "alice@example.com")


def store_of(core: Core) -> SqlStore:
    assert isinstance(core.store, SqlStore)
    return core.store


def test_rows_equal_sqlalchemys_in_value_and_type(core: Core, account: Account, user: User) -> None:
    # Booleans (integers in SQLite) and JSON (text in SQLite) need converting.
    with core.store.transaction() as tx:
        account.ip_whitelist = ["10.0.0.0/8"]
        account.settings = {"k": [1, "two"]}
        account.force_2fa = True
        tx.accounts.save(account)
    with store_of(core).engine.connect() as conn:
        expected = tuple(conn.execute(_OWNER, {"b_id": user.id}).one())
        got = Prepared(_OWNER).first(conn, {"b_id": user.id})
    assert got == expected
    assert [type(value) for value in got] == [type(value) for value in expected]
    assert ["10.0.0.0/8"] in got and {"k": [1, "two"]} in got and True in got


def test_values_written_into_a_statement_are_sent(core: Core) -> None:
    statement = insert(throttle).values(
        key=bindparam("b_key"), failures=3, blocked_until=0.5, updated=bindparam("b_now")
    )
    with store_of(core).engine.begin() as conn:
        Prepared(statement).rowcount(conn, {"b_key": "k", "b_now": NOW})
        row = conn.execute(select(throttle).where(throttle.c.key == "k")).one()
    assert tuple(row) == ("k", 3, 0.5, NOW)


def test_json_parameters_are_serialized_like_sqlalchemys(core: Core) -> None:
    values: dict[str, Any] = {
        "at": NOW,
        "event": "e",
        "outcome": "o",
        "actor_id": None,
        "target_id": None,
        "account_id": None,
        "client_addr": None,
        "detail": {"factor": "totp", "n": [1, 2]},
    }
    with store_of(core).engine.begin() as conn:
        Prepared(insert(audit_log)).rowcount(conn, values)
        row = conn.execute(select(audit_log.c.detail).where(audit_log.c.event == "e")).one()
    assert row.detail == {"factor": "totp", "n": [1, 2]}


def test_a_statement_runs_inside_the_callers_transaction(core: Core) -> None:
    statement = Prepared(
        insert(throttle).values(key="gone", failures=1, blocked_until=0.0, updated=NOW)
    )
    with pytest.raises(Boom), core.store.transaction() as tx:
        statement.rowcount(tx.conn, {})  # type: ignore[attr-defined]
        raise Boom()
    with core.store.transaction(write=False) as tx:
        assert tx.throttle.states(["gone", "other"]) == []


def test_statement_listeners_see_every_prepared_statement(core: Core, user: User) -> None:
    engine = store_of(core).engine
    seen: list[str] = []

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        with engine.connect() as conn:
            Prepared(_OWNER).first(conn, {"b_id": user.id})
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
    assert len(seen) == 1 and seen[0].startswith("SELECT")


def test_an_expanding_parameter_is_refused(core: Core) -> None:
    statement = select(throttle).where(throttle.c.key.in_(bindparam("keys", expanding=True)))
    with store_of(core).engine.connect() as conn, pytest.raises(ValueError, match="expanding"):
        Prepared(statement).rows(conn, {"keys": ["a"]})


def test_a_missing_parameter_is_refused(core: Core) -> None:
    with store_of(core).engine.connect() as conn, pytest.raises(ValueError, match="b_id"):
        Prepared(_OWNER).first(conn, {})


def test_a_python_side_default_is_refused(core: Core) -> None:
    # accounts.status has a Python-side default: only SQLAlchemy fills it in.
    statement = insert(accounts).values(
        id="a", name="n", created=NOW, modified=NOW, ip_whitelist=[], settings={}
    )
    with store_of(core).engine.connect() as conn, pytest.raises(ValueError, match="default"):
        Prepared(statement).rowcount(conn, {})
