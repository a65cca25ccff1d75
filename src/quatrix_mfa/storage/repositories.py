"""Accounts, users and factors."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from quatrix_mfa.core.model import Account, TotpEnrollment, TotpSecret, User
from quatrix_mfa.core.ports import DuplicateEmail
from quatrix_mfa.storage.prepared import Prepared
from quatrix_mfa.storage.tables import (
    accounts,
    recovery_codes,
    totp_enrollments,
    totp_secrets,
    users,
)

CHUNK = 500


def chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


def delete_some(
    conn: Connection, table: Table, key: Column[Any], condition: Any, limit: int
) -> int:
    """Delete at most ``limit`` rows matching ``condition``: purges stay short
    transactions with short locks, however much there is to purge."""
    some = select(key).where(condition).limit(limit)
    return int(conn.execute(delete(table).where(key.in_(some))).rowcount)


class SqlAccountRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _row(self, row: Any) -> Account:
        return self.row_to_account(row)

    @staticmethod
    def row_to_account(row: Any) -> Account:
        return Account(
            id=row.id,
            name=row.name,
            created=row.created,
            modified=row.modified,
            force_2fa=row.force_2fa,
            ip_restricted=row.ip_restricted,
            ip_whitelist=list(row.ip_whitelist),
            settings=dict(row.settings),
            status=row.status,
        )

    def _values(self, account: Account) -> dict[str, Any]:
        return {
            "name": account.name,
            "created": account.created,
            "modified": account.modified,
            "force_2fa": account.force_2fa,
            "ip_restricted": account.ip_restricted,
            "ip_whitelist": account.ip_whitelist,
            "settings": account.settings,
            "status": account.status,
        }

    def get(self, account_id: str) -> Account | None:
        row = self.conn.execute(select(accounts).where(accounts.c.id == account_id)).first()
        return self._row(row) if row else None

    def first(self) -> Account | None:
        row = self.conn.execute(select(accounts).order_by(accounts.c.created).limit(1)).first()
        return self._row(row) if row else None

    def add(self, account: Account) -> None:
        self.conn.execute(insert(accounts).values(id=account.id, **self._values(account)))

    def save(self, account: Account) -> None:
        self.conn.execute(
            update(accounts).where(accounts.c.id == account.id).values(**self._values(account))
        )


_USER_FIELDS = (
    "account_id",
    "email",
    "name",
    "created",
    "modified",
    "super_admin",
    "status",
    "language",
    "password_hash",
    "twofa_active",
    "twofa_forced",
    "pin_hash",
    "pin_forced",
    "last_login",
)


# The statements of the hot paths (every login, every authenticated call) are
# built once and run on the driver's cursor (storage/prepared.py): building a
# statement per call, and SQLAlchemy's work per execution, cost more than
# SQLite's own work (bench/analysis.md).
_USER_BY_ID = select(users).where(users.c.id == bindparam("b_id"))
_USER_BY_EMAIL = select(users).where(users.c.email == bindparam("b_email"))
_GET_USER = Prepared(_USER_BY_ID)
_GET_USER_LOCKED = Prepared(_USER_BY_ID.with_for_update())
_USER_OF_EMAIL = Prepared(_USER_BY_EMAIL)
_USER_OF_EMAIL_LOCKED = Prepared(_USER_BY_EMAIL.with_for_update())
_LOCK_USER = Prepared(select(users.c.id).where(users.c.id == bindparam("b_id")).with_for_update())
_LAST_LOGIN = Prepared(update(users).where(users.c.id == bindparam("b_id")))
_TOTP_OF = Prepared(select(totp_secrets).where(totp_secrets.c.user_id == bindparam("b_user_id")))
# Rows from the driver are plain tuples in table order; this names a user's fields.
UserRow = namedtuple("UserRow", [c.name for c in users.c])  # type: ignore[misc]
_ADVANCE_TOTP = Prepared(
    update(totp_secrets)
    .where(
        totp_secrets.c.user_id == bindparam("b_user_id"),
        totp_secrets.c.credential_id == bindparam("b_credential_id"),
        or_(
            totp_secrets.c.last_step.is_(None),
            totp_secrets.c.last_step < bindparam("b_step"),
        ),
    )
    .values(last_step=bindparam("b_step"))
)


class SqlUserRepository:
    def __init__(self, conn: Connection, lock: bool = False) -> None:
        self.conn = conn
        self.lock_rows = lock

    @staticmethod
    def _row(row: Any) -> User:
        return User(id=row.id, **{f: getattr(row, f) for f in _USER_FIELDS})

    row_to_user = _row

    @staticmethod
    def _values(user: User) -> dict[str, Any]:
        return {f: getattr(user, f) for f in _USER_FIELDS}

    def get(self, user_id: str) -> User | None:
        query = _GET_USER_LOCKED if self.lock_rows else _GET_USER
        row = query.first(self.conn, {"b_id": user_id})
        return self._row(UserRow._make(row)) if row else None

    def lock(self, user_id: str) -> None:
        # SQLite needs nothing: its writers already run one at a time.
        if self.lock_rows:
            _LOCK_USER.rows(self.conn, {"b_id": user_id})

    def by_email(self, email: str) -> User | None:
        query = _USER_OF_EMAIL_LOCKED if self.lock_rows else _USER_OF_EMAIL
        row = query.first(self.conn, {"b_email": email.lower()})
        return self._row(UserRow._make(row)) if row else None

    def in_account(self, account_id: str, ids: Sequence[str] | None = None) -> list[User]:
        query = (
            select(users)
            .where(users.c.account_id == account_id)
            .order_by(users.c.created, users.c.id)
        )
        if self.lock_rows:
            query = query.with_for_update()
        if ids is None:
            return [self._row(r) for r in self.conn.execute(query)]
        found: list[User] = []
        for part in chunks(ids):
            found.extend(self._row(r) for r in self.conn.execute(query.where(users.c.id.in_(part))))
        return found

    def add(self, user: User) -> None:
        values = self._values(user)
        values["email"] = user.email.lower()
        try:
            with self.conn.begin_nested():
                self.conn.execute(insert(users).values(id=user.id, **values))
        except IntegrityError:
            raise DuplicateEmail(user.email) from None

    def save(self, user: User) -> None:
        values = self._values(user)
        values["email"] = user.email.lower()
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

    def delete(self, ids: Sequence[str]) -> None:
        for part in chunks(ids):
            self.conn.execute(delete(users).where(users.c.id.in_(part)))

    def count_admins(self, account_id: str) -> int:
        query = select(func.count()).where(
            users.c.account_id == account_id, users.c.super_admin.is_(True), users.c.status == "A"
        )
        return int(self.conn.execute(query).scalar_one())


class SqlFactorRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def totp(self, user_id: str) -> TotpSecret | None:
        found = _TOTP_OF.first(self.conn, {"b_user_id": user_id})
        if found is None:
            return None
        owner, credential_id, ciphertext, key_id, created, last_step = found  # table order
        return TotpSecret(owner, credential_id, bytes(ciphertext), key_id, created, last_step)

    def put_totp(self, secret: TotpSecret) -> None:
        self.delete_totp(secret.user_id)
        self.conn.execute(
            insert(totp_secrets).values(
                user_id=secret.user_id,
                credential_id=secret.credential_id,
                ciphertext=secret.ciphertext,
                key_id=secret.key_id,
                created=secret.created,
                last_step=secret.last_step,
            )
        )

    def delete_totp(self, user_id: str) -> None:
        self.conn.execute(delete(totp_secrets).where(totp_secrets.c.user_id == user_id))

    def advance_totp_step(self, user_id: str, credential_id: str, step: int) -> bool:
        # The replay guard: one conditional UPDATE, so of two racing workers
        # with the same code exactly one sees rowcount 1.
        params = {"b_user_id": user_id, "b_credential_id": credential_id, "b_step": step}
        return _ADVANCE_TOTP.rowcount(self.conn, params) == 1

    def enrollment(self, user_id: str) -> TotpEnrollment | None:
        row = self.conn.execute(
            select(totp_enrollments).where(totp_enrollments.c.user_id == user_id)
        ).first()
        if row is None:
            return None
        return TotpEnrollment(row.user_id, bytes(row.ciphertext), row.key_id, row.expires_at)

    def put_enrollment(self, enrollment: TotpEnrollment) -> None:
        self.delete_enrollment(enrollment.user_id)
        self.conn.execute(
            insert(totp_enrollments).values(
                user_id=enrollment.user_id,
                ciphertext=enrollment.ciphertext,
                key_id=enrollment.key_id,
                expires_at=enrollment.expires_at,
            )
        )

    def delete_enrollment(self, user_id: str) -> None:
        self.conn.execute(delete(totp_enrollments).where(totp_enrollments.c.user_id == user_id))

    def replace_recovery_codes(self, user_id: str, code_hashes: Sequence[str]) -> None:
        self.delete_recovery_codes(user_id)
        self.conn.execute(
            insert(recovery_codes), [{"user_id": user_id, "code_hash": h} for h in code_hashes]
        )

    def consume_recovery_code(self, user_id: str, code_hash: str, now: float) -> bool:
        result = self.conn.execute(
            update(recovery_codes)
            .where(
                recovery_codes.c.user_id == user_id,
                recovery_codes.c.code_hash == code_hash,
                recovery_codes.c.used_at.is_(None),
            )
            .values(used_at=now)
        )
        return result.rowcount == 1

    def recovery_codes_left(self, user_id: str) -> int:
        query = select(func.count()).where(
            recovery_codes.c.user_id == user_id, recovery_codes.c.used_at.is_(None)
        )
        return int(self.conn.execute(query).scalar_one())

    def delete_recovery_codes(self, user_id: str) -> None:
        self.conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))

    def purge_enrollments(self, now: float, limit: int) -> int:
        table = totp_enrollments
        return delete_some(self.conn, table, table.c.user_id, table.c.expires_at <= now, limit)

    def encrypted_rows(self, not_key_id: str, limit: int) -> list[tuple[str, str, bytes, str]]:
        rows: list[tuple[str, str, bytes, str]] = []
        for name, table in (("totp_secrets", totp_secrets), ("totp_enrollments", totp_enrollments)):
            query = (
                select(table.c.user_id, table.c.ciphertext, table.c.key_id)
                .where(table.c.key_id != not_key_id)
                .limit(limit)
            )
            rows.extend(
                (name, r.user_id, bytes(r.ciphertext), r.key_id) for r in self.conn.execute(query)
            )
        return rows[:limit]

    def reencrypt(self, table: str, user_id: str, old: bytes, new: bytes, new_key_id: str) -> bool:
        # Compare-and-set on the old ciphertext: a secret replaced meanwhile is left alone.
        target = totp_secrets if table == "totp_secrets" else totp_enrollments
        result = self.conn.execute(
            update(target)
            .where(and_(target.c.user_id == user_id, target.c.ciphertext == old))
            .values(ciphertext=new, key_id=new_key_id)
        )
        return result.rowcount == 1
