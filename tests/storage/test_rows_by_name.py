"""Rows are read by column name (storage/rows.py, storage/prepared.py): the
joined session read gives each record the values of its own table's columns
whatever order the select puts them in, and with a column more."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import LABEL_STYLE_TABLENAME_PLUS_COL, bindparam, literal_column, select

from quatrix_mfa.core.context import Core
from quatrix_mfa.core.model import Account, Credential, SessionKind, SessionRecord, Step, User
from quatrix_mfa.storage import sessions as session_storage
from quatrix_mfa.storage.prepared import Prepared
from quatrix_mfa.storage.rows import RecordReader, enrolled_kinds
from quatrix_mfa.storage.tables import accounts, sessions, users

# The tables the other way round, and a column in front of them all: read by
# position, every field would take a neighbour's value.
_REORDERED = Prepared(
    select(
        literal_column("'extra'").label("extra"),
        accounts,
        enrolled_kinds(users.c.id).label("users_enrolled"),
        users,
        sessions,
    )
    .select_from(sessions)
    .join(users, users.c.id == sessions.c.user_id)
    .join(accounts, accounts.c.id == users.c.account_id)
    .where(sessions.c.token_hash == bindparam("token_hash"))
    .set_label_style(LABEL_STYLE_TABLENAME_PLUS_COL)
)


def _owned_session(core: Core) -> tuple[SessionRecord, User, Account]:
    """A session, its user and account, with no value shared between two fields."""
    account = Account(
        id="a" * 36,
        name="Acme Ltd",
        created=1.0,
        modified=2.0,
        force_2fa=True,
        ip_restricted=False,
        ip_whitelist=["10.0.0.0/8"],
        settings={"k": "v"},
        status="L",
    )
    user = User(
        id="u" * 36,
        account_id=account.id,
        email="alice@example.com",
        name="alice",
        created=3.0,
        modified=4.0,
        super_admin=True,
        status="D",
        language="deu",
        password_hash="$argon2id$p",
        twofa_active=False,
        twofa_forced=True,
        pin_forced=False,
        last_login=5.0,
        credential_epoch=0,
        enrolled=frozenset({"pin"}),
    )
    session = SessionRecord(
        "t" * 64,
        user.id,
        6.0,
        7.0,
        8.0,
        (Step.TOTP, Step.PIN),
        2,
        epoch=0,
        kind=SessionKind.BROWSER,
        auth_time=9.0,
        factors=("password", "totp"),
    )
    with core.store.transaction() as tx:
        tx.accounts.add(account)
        tx.users.add(user)
        tx.credentials.add(Credential("c" * 36, user.id, "pin", b"$argon2id$q", None, 10.0))
        tx.sessions.add(session)
    return session, user, account


@pytest.mark.parametrize("statement", ["as shipped", "reordered, a column more"])
def test_the_joined_session_read_takes_each_field_from_its_own_column(
    core: Core, monkeypatch: pytest.MonkeyPatch, statement: str
) -> None:
    if statement != "as shipped":
        monkeypatch.setattr(session_storage, "_WITH_OWNER", _REORDERED)
    session, user, account = _owned_session(core)
    with core.store.transaction(write=False) as tx:
        found = tx.sessions.get_with_owner(session.token_hash)
    assert found == (session, user, account)


def test_a_reader_refuses_a_field_its_table_lacks() -> None:
    @dataclasses.dataclass
    class Odd:
        token_hash: str
        colour: str

    with pytest.raises(ValueError, match="colour"):
        RecordReader(Odd, sessions)


def test_prepared_rows_are_named_as_the_driver_names_the_columns(core: Core) -> None:
    session, user, _ = _owned_session(core)
    statement = Prepared(
        select(sessions.c.failures, users.c.email.label("mail"))
        .join(users, users.c.id == sessions.c.user_id)
        .where(sessions.c.token_hash == bindparam("b_token"))
    )
    with core.store.transaction(write=False) as tx:
        row = statement.first(tx.conn, {"b_token": session.token_hash})  # type: ignore[attr-defined]
    assert row is not None
    assert (row.failures, row.mail) == (session.failures, user.email)


def test_a_column_name_that_is_no_attribute_name_is_refused(core: Core) -> None:
    statement = Prepared(select(users.c.id.label("user id")))
    with core.store.transaction(write=False) as tx, pytest.raises(ValueError, match="unique"):
        statement.rows(tx.conn, {})  # type: ignore[attr-defined]
