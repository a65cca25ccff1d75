"""Accounts: the tenant a user belongs to, with its policy (forced 2FA, IP allow-list)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from quatrix_mfa.core.model import Account
from quatrix_mfa.storage.rows import account_reader
from quatrix_mfa.storage.tables import accounts

_ACCOUNT = account_reader()


class SqlAccountRepository:
    def __init__(self, conn: Connection, lock: bool = False) -> None:
        self.conn = conn
        self.lock_rows = lock

    def lock(self, account_id: str) -> None:
        # SQLite needs nothing: its writers already run one at a time.
        if self.lock_rows:
            self.conn.execute(
                select(accounts.c.id).where(accounts.c.id == account_id).with_for_update()
            ).all()

    @staticmethod
    def _values(account: Account) -> dict[str, Any]:
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
        return _ACCOUNT(row) if row else None

    def first(self) -> Account | None:
        row = self.conn.execute(select(accounts).order_by(accounts.c.created).limit(1)).first()
        return _ACCOUNT(row) if row else None

    def add(self, account: Account) -> None:
        self.conn.execute(insert(accounts).values(id=account.id, **self._values(account)))

    def save(self, account: Account) -> None:
        self.conn.execute(
            update(accounts).where(accounts.c.id == account.id).values(**self._values(account))
        )
