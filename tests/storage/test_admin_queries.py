"""The storage contract of the admin console's reads (core/ports.py: users
``find``/``count``, sessions ``count_open``, audit ``find``), on SQLite and,
with ``--db=postgresql``, on PostgreSQL: the same answers from both."""

from __future__ import annotations

import uuid

from quatrix_mfa.core.context import Core
from quatrix_mfa.core.model import (
    TOTP_KIND,
    Account,
    AuditEvent,
    Credential,
    SessionRecord,
    Step,
)
from quatrix_mfa.core.ports import AuditQuery, UserQuery
from tests.support.storage import NOW, new_account, new_user


def seed(core: Core, account: Account) -> dict[str, str]:
    """Five users of ``account`` (one of another account) with the states the filters tell apart."""
    states = {
        "ann@example.com": {"name": "Ann Smith"},
        "bob@example.com": {"twofa_active": True},
        "cy@example.com": {"twofa_forced": True, "status": "D"},
        "dee_x@example.com": {"name": "100% Dee"},
        "eve@example.com": {"twofa_forced": True},
    }
    ids: dict[str, str] = {}
    with core.store.transaction() as tx:
        for email, fields in states.items():
            user = new_user(tx, account, email)
            for name, value in fields.items():
                setattr(user, name, value)
            tx.users.save(user)
            ids[email] = user.id
        for email in ("bob@example.com", "eve@example.com"):
            tx.credentials.add(Credential(str(uuid.uuid4()), ids[email], TOTP_KIND, b"x", "k", NOW))
        new_user(tx, new_account(tx), "ann.other@example.com")
    return ids


def found(core: Core, account: Account, query: UserQuery, limit: int = 50) -> list[str]:
    with core.store.transaction(write=False) as tx:
        return [u.email for u in tx.users.find(account.id, query, None, limit)]


def test_users_are_found_by_text_status_and_2fa_state(core: Core, account: Account) -> None:
    seed(core, account)
    assert found(core, account, UserQuery(text="ann")) == ["ann@example.com"]
    assert found(core, account, UserQuery(text="smith")) == ["ann@example.com"]  # name, any case
    assert found(core, account, UserQuery(text="%")) == ["dee_x@example.com"]  # literally
    assert found(core, account, UserQuery(text="e_x")) == ["dee_x@example.com"]
    assert found(core, account, UserQuery(status="D")) == ["cy@example.com"]
    assert found(core, account, UserQuery(chosen=False)) == ["ann@example.com", "dee_x@example.com"]
    assert found(core, account, UserQuery(forced=True)) == ["cy@example.com", "eve@example.com"]
    enrolled = UserQuery(kind=TOTP_KIND, has_kind=True)
    assert found(core, account, enrolled) == ["bob@example.com", "eve@example.com"]
    waiting = UserQuery(chosen=True, kind=TOTP_KIND, has_kind=False)
    assert found(core, account, waiting) == ["cy@example.com"]
    with core.store.transaction(write=False) as tx:
        assert tx.users.count(account.id, UserQuery()) == 5
        assert tx.users.count(account.id, UserQuery(kind=TOTP_KIND, has_kind=False)) == 3


def test_users_page_by_email_and_id_from_the_last_one_seen(core: Core, account: Account) -> None:
    seed(core, account)
    pages: list[list[str]] = []
    after: tuple[str, str] | None = None
    while True:
        with core.store.transaction(write=False) as tx:
            page = tx.users.find(account.id, UserQuery(), after, 2)
        if not page:
            break
        pages.append([u.email for u in page])
        after = (page[-1].email, page[-1].id)
    assert pages == [
        ["ann@example.com", "bob@example.com"],
        ["cy@example.com", "dee_x@example.com"],
        ["eve@example.com"],
    ]
    # A cursor that names no row still seeks to its place.
    with core.store.transaction(write=False) as tx:
        rest = tx.users.find(account.id, UserQuery(), ("c", ""), 10)
    assert rest[0].email == "cy@example.com"


def test_open_sessions_are_counted_for_the_users_a_query_selects(
    core: Core, account: Account
) -> None:
    ids = seed(core, account)
    idle_since = NOW - 900

    def add(email: str, token: str, **fields: object) -> None:
        record = SessionRecord(token * 64, ids[email], NOW, NOW, NOW + 3600)
        for name, value in fields.items():
            setattr(record, name, value)
        with core.store.transaction() as tx:
            tx.sessions.add(record)

    add("ann@example.com", "a")
    add("ann@example.com", "b", last_seen=NOW - 1000)  # idle: over
    add("ann@example.com", "c", expires_at=NOW - 1)  # expired
    add("ann@example.com", "d", epoch=7)  # closed by a change of credentials
    add(
        "dee_x@example.com", "e", last_seen=NOW - 1000, steps=(Step.TOTP,)
    )  # pending: no idle limit
    add("bob@example.com", "f")  # has 2FA
    without = UserQuery(kind=TOTP_KIND, has_kind=False)
    with core.store.transaction(write=False) as tx:
        assert tx.sessions.count_open(account.id, without, NOW, idle_since) == 2
        assert tx.sessions.count_open(account.id, UserQuery(), NOW, idle_since) == 3


def test_audit_rows_of_an_account_are_found_newest_first_from_a_cursor(
    core: Core, account: Account
) -> None:
    someone, other = str(uuid.uuid4()), str(uuid.uuid4())
    with core.store.transaction() as tx:
        for n in range(6):
            tx.audit.append(
                AuditEvent(
                    NOW + n,
                    "factor.set" if n % 2 else "login.password",
                    "success" if n < 4 else "failure",
                    actor_id=someone if n == 1 else None,
                    target_id=someone if n == 2 else None,
                    account_id=account.id,
                    detail={"n": n},
                )
            )
        tx.audit.append(AuditEvent(NOW, "factor.set", "success", account_id=other))

    def rows(query: AuditQuery, before: int | None = None, limit: int = 10) -> list[int]:
        with core.store.transaction(write=False) as tx:
            return [e.detail["n"] for e in tx.audit.find(account.id, query, before, limit)]

    assert rows(AuditQuery()) == [5, 4, 3, 2, 1, 0]
    assert rows(AuditQuery(user_id=someone)) == [2, 1]
    assert rows(AuditQuery(event="factor.set")) == [5, 3, 1]
    assert rows(AuditQuery(outcome="failure")) == [5, 4]
    assert rows(AuditQuery(since=NOW + 2, until=NOW + 4)) == [3, 2]
    with core.store.transaction(write=False) as tx:
        first = tx.audit.find(account.id, AuditQuery(), None, 2)
    assert [e.detail["n"] for e in first] == [5, 4]
    assert first[-1].id is not None
    assert rows(AuditQuery(), before=first[-1].id, limit=2) == [3, 2]
