"""Password-set links: stored as hashes of their ids, each used at most once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, insert, or_, select, update

from quatrix_mfa.core.model import Mail, ResetRequest
from quatrix_mfa.storage.rows import RecordReader, delete_some
from quatrix_mfa.storage.tables import outbox, password_resets, users

_RESET = RecordReader(ResetRequest, password_resets)


class SqlResetRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, reset: ResetRequest) -> None:
        self.conn.execute(
            insert(password_resets).values(
                id_hash=reset.id_hash,
                user_id=reset.user_id,
                created=reset.created,
                expires_at=reset.expires_at,
                used_at=reset.used_at,
                email_hash=reset.email_hash,
                new_email=reset.new_email,
            )
        )

    def add_if_user(self, reset: ResetRequest, mail: Mail) -> bool:
        # INSERT ... SELECT FROM users: one statement per table whether or not the
        # user exists, so a request for an unknown email costs what a known one does.
        def values(table: Table, row: dict[str, Any]) -> Any:
            columns = [bindparam(k, v, type_=table.c[k].type) for k, v in row.items()]
            return insert(table).from_select(
                list(row), select(*columns).where(users.c.id == reset.user_id)
            )

        link: dict[str, Any] = {"id_hash": reset.id_hash, "user_id": reset.user_id}
        link |= {"created": reset.created, "expires_at": reset.expires_at}
        link["email_hash"] = reset.email_hash
        added = self.conn.execute(values(password_resets, link)).rowcount == 1
        letter: dict[str, Any] = {"to_addr": mail.to, "subject": mail.subject, "body": mail.body}
        letter |= {"secret": mail.secret, "key_id": mail.key_id}
        letter |= {"created": mail.created, "attempts": 0, "next_attempt_at": mail.next_attempt_at}
        self.conn.execute(values(outbox, letter))
        return added

    def get(self, id_hash: str) -> ResetRequest | None:
        row = self.conn.execute(
            select(password_resets).where(password_resets.c.id_hash == id_hash)
        ).first()
        return None if row is None else _RESET(row)

    def consume(self, id_hash: str, now: float) -> bool:
        result = self.conn.execute(
            update(password_resets)
            .where(
                password_resets.c.id_hash == id_hash,
                password_resets.c.used_at.is_(None),
                password_resets.c.expires_at > now,
            )
            .values(used_at=now)
        )
        return result.rowcount == 1

    def latest_for_user(self, user_id: str) -> ResetRequest | None:
        row = self.conn.execute(
            select(password_resets)
            .where(password_resets.c.user_id == user_id, password_resets.c.new_email.is_(None))
            .order_by(password_resets.c.created.desc())
            .limit(1)
        ).first()
        return None if row is None else _RESET(row)

    def delete_for_user(self, user_id: str) -> None:
        self.conn.execute(delete(password_resets).where(password_resets.c.user_id == user_id))

    def delete_email_changes(self, user_id: str) -> None:
        table = password_resets
        self.conn.execute(
            delete(table).where(table.c.user_id == user_id, table.c.new_email.is_not(None))
        )

    def purge(self, now: float, limit: int) -> int:
        table = password_resets
        dead = or_(table.c.expires_at <= now, table.c.used_at.is_not(None))
        return delete_some(self.conn, table, table.c.id_hash, dead, limit)
