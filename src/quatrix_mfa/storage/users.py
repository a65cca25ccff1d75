"""Users: the hot lookups (by id, by email) as prepared statements."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from quatrix_mfa.core.model import User
from quatrix_mfa.core.ports import DuplicateEmail, UserQuery
from quatrix_mfa.storage.prepared import Prepared
from quatrix_mfa.storage.rows import chunks, enrolled_kinds, user_reader
from quatrix_mfa.storage.tables import credentials, users

# Every field that ``save`` writes: not the id (the key, never changed), not
# the epoch (only bump_epoch moves it, atomically), not what is read from
# the credentials table.
_USER_FIELDS = tuple(
    f.name for f in dataclasses.fields(User) if f.name not in ("id", "credential_epoch", "enrolled")
)
_USER = user_reader()
_SELECT_USERS = select(users, enrolled_kinds(users.c.id).label("enrolled"))

# The statements of the hot paths (every login, every authenticated call) are
# built once and run on the driver's cursor (storage/prepared.py): building a
# statement per call, and SQLAlchemy's work per execution, cost more than
# SQLite's own work (bench/analysis.md).
_USER_BY_ID = _SELECT_USERS.where(users.c.id == bindparam("b_id"))
# Several users may share an email (one per account): the one who signs in
# with it (has a password; at most one, by ix_users_sign_in_email) comes
# first, else the newest active one of those invited with it.
_USER_BY_EMAIL = (
    _SELECT_USERS.where(users.c.email == bindparam("b_email"))
    .order_by(
        users.c.password_hash.is_(None),
        users.c.status != "A",
        users.c.created.desc(),
        users.c.id,
    )
    .limit(1)
)
_GET_USER = Prepared(_USER_BY_ID)
_USER_OF_EMAIL = Prepared(_USER_BY_EMAIL)
# PostgreSQL: a user read for a change is locked by one statement and read by
# the next. A statement that waited for a row lock still reads everything
# but the locked row as it was when the statement began (READ COMMITTED), so
# ``enrolled`` (a subquery over the credentials) would miss a change that
# committed during the wait: two removals of one PIN at once both found it on.
_LOCK_USER = Prepared(select(users.c.id).where(users.c.id == bindparam("b_id")).with_for_update())
_LOCK_USER_OF_EMAIL = Prepared(_USER_BY_EMAIL.with_only_columns(users.c.id).with_for_update())
_LAST_LOGIN = Prepared(update(users).where(users.c.id == bindparam("b_id")))
_BUMP_EPOCH = Prepared(
    update(users)
    .where(users.c.id == bindparam("b_id"))
    .values(credential_epoch=users.c.credential_epoch + 1)
    .returning(users.c.credential_epoch)
)


class SqlUserRepository:
    def __init__(self, conn: Connection, lock: bool = False) -> None:
        self.conn = conn
        self.lock_rows = lock

    @staticmethod
    def _values(user: User) -> dict[str, Any]:
        values = {f: getattr(user, f) for f in _USER_FIELDS}
        values["email"] = user.email.lower()
        return values

    def get(self, user_id: str) -> User | None:
        if self.lock_rows:
            self.lock(user_id)
        row = _GET_USER.first(self.conn, {"b_id": user_id})
        return _USER(row) if row else None

    def lock(self, user_id: str) -> None:
        # SQLite needs nothing: its writers already run one at a time.
        if self.lock_rows:
            _LOCK_USER.rows(self.conn, {"b_id": user_id})

    def by_email(self, email: str) -> User | None:
        if not self.lock_rows:
            row = _USER_OF_EMAIL.first(self.conn, {"b_email": email.lower()})
            return _USER(row) if row else None
        locked = _LOCK_USER_OF_EMAIL.first(self.conn, {"b_email": email.lower()})
        if locked is None:
            return None
        row = _GET_USER.first(self.conn, {"b_id": locked.id})
        return _USER(row) if row else None

    def in_account_by_email(self, account_id: str, email: str) -> User | None:
        query = _SELECT_USERS.where(
            users.c.account_id == account_id, users.c.email == email.lower()
        )
        self._lock(query)
        row = self.conn.execute(query).first()
        return _USER(row) if row else None

    def in_account(self, account_id: str, ids: Sequence[str] | None = None) -> list[User]:
        query = _SELECT_USERS.where(users.c.account_id == account_id).order_by(
            users.c.created, users.c.id
        )
        if ids is None:
            self._lock(query)
            return [_USER(r) for r in self.conn.execute(query)]
        found: list[User] = []
        for part in chunks(ids):
            some = query.where(users.c.id.in_(part))
            self._lock(some)
            found.extend(_USER(r) for r in self.conn.execute(some))
        return found

    def _lock(self, query: Any) -> None:
        """On PostgreSQL, lock the users ``query`` selects, before it reads
        them in a statement of its own (see ``_LOCK_USER``)."""
        if self.lock_rows:
            self.conn.execute(query.with_only_columns(users.c.id).with_for_update())

    def add(self, user: User) -> None:
        try:
            with self.conn.begin_nested():
                self.conn.execute(insert(users).values(id=user.id, **self._values(user)))
        except IntegrityError:
            raise DuplicateEmail(user.email) from None

    def save(self, user: User) -> None:
        values = self._values(user)
        try:
            with self.conn.begin_nested():
                self.conn.execute(update(users).where(users.c.id == user.id).values(**values))
        except IntegrityError:
            raise DuplicateEmail(user.email) from None

    def record_login(
        self, user_id: str, last_login: float | None, password_hash: str | None
    ) -> None:
        values: dict[str, Any] = {}
        if last_login is not None:
            values["last_login"] = last_login
        if password_hash is not None:
            values["password_hash"] = password_hash
        if values:
            _LAST_LOGIN.rowcount(self.conn, {"b_id": user_id, **values})

    def bump_epoch(self, user_id: str) -> int:
        row = _BUMP_EPOCH.first(self.conn, {"b_id": user_id})
        return int(row.credential_epoch) if row else 0

    def delete(self, ids: Sequence[str]) -> None:
        for part in chunks(ids):
            self.conn.execute(delete(users).where(users.c.id.in_(part)))

    def count_admins(self, account_id: str) -> int:
        query = select(func.count()).where(
            users.c.account_id == account_id, users.c.super_admin.is_(True), users.c.status == "A"
        )
        return int(self.conn.execute(query).scalar_one())

    def find(
        self, account_id: str, query: UserQuery, after: tuple[str, str] | None, limit: int
    ) -> list[User]:
        # ix_users_account_id_email_id gives the rows in this order: the seek
        # starts at ``after`` and stops after ``limit`` matches.
        found = _SELECT_USERS.where(users.c.account_id == account_id, *matching(query))
        if after is not None:
            email, user_id = after
            # ``email >= x`` is the range the index seeks to; an OR alone made
            # SQLite walk the index from its start (a deep page cost 15x the first).
            found = found.where(
                users.c.email >= email, or_(users.c.email > email, users.c.id > user_id)
            )
        found = found.order_by(users.c.email, users.c.id).limit(limit)
        return [_USER(r) for r in self.conn.execute(found)]

    def count(self, account_id: str, query: UserQuery) -> int:
        counted = select(func.count()).where(users.c.account_id == account_id, *matching(query))
        return int(self.conn.execute(counted).scalar_one())


def _like(text: str) -> str:
    """``text`` as a LIKE pattern found anywhere, its own % and _ taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def matching(query: UserQuery) -> list[ColumnElement[bool]]:
    """The conditions on ``users`` that select what ``query`` asks for."""
    conditions: list[ColumnElement[bool]] = []
    if query.text:
        pattern = _like(query.text)
        conditions.append(
            or_(
                users.c.email.like(pattern, escape="\\"),
                func.lower(users.c.name).like(pattern, escape="\\"),
            )
        )
    if query.status is not None:
        conditions.append(users.c.status == query.status)
    if query.chosen is not None:
        chosen = or_(users.c.twofa_active.is_(True), users.c.twofa_forced.is_(True))
        conditions.append(chosen if query.chosen else ~chosen)
    if query.forced is not None:
        conditions.append(users.c.twofa_forced.is_(query.forced))
    if query.kind is not None and query.has_kind is not None:
        # ix_credentials_user_id_kind answers this per user.
        held = exists().where(credentials.c.user_id == users.c.id, credentials.c.kind == query.kind)
        conditions.append(held if query.has_kind else ~held)
    return conditions
