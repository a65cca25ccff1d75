"""Accounts: the tenant a user belongs to, with its policy (forced 2FA, IP allow-list)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from quatrix_mfa.core.model import Account
from quatrix_mfa.storage.rows import account_reader
from quatrix_mfa.storage.tables import accounts

_ACCOUNT = account_reader()
MFA_DONE = 4  # core/rollout.py ENFORCED: nothing left to do for the deadline


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
            "mfa_enroll_by": account.mfa_enroll_by,
            "mfa_self_recovery": account.mfa_self_recovery,
            "trusted_device_days": account.trusted_device_days,
            # Not trust_epoch: only end_trust moves it.
            "totp_algorithm": account.totp_algorithm,
            "totp_digits": account.totp_digits,
            "totp_period": account.totp_period,
            # Not mfa_stage: only claim_mfa_stage and restart_mfa_stage move it.
        }

    def get(self, account_id: str) -> Account | None:
        row = self.conn.execute(select(accounts).where(accounts.c.id == account_id)).first()
        return _ACCOUNT(row) if row else None

    def first(self) -> Account | None:
        row = self.conn.execute(select(accounts).order_by(accounts.c.created).limit(1)).first()
        return _ACCOUNT(row) if row else None

    def all(self) -> list[Account]:
        query = select(accounts).order_by(accounts.c.created, accounts.c.id)
        return [_ACCOUNT(row) for row in self.conn.execute(query)]

    def add(self, account: Account) -> None:
        self.conn.execute(insert(accounts).values(id=account.id, **self._values(account)))

    def save(self, account: Account) -> None:
        self.conn.execute(
            update(accounts).where(accounts.c.id == account.id).values(**self._values(account))
        )

    def in_mfa_rollout(self) -> list[Account]:
        # The accounts whose 2FA deadline still has work to do (few: an index is not needed).
        query = select(accounts).where(
            accounts.c.force_2fa.is_(True),
            accounts.c.mfa_enroll_by.is_not(None),
            accounts.c.mfa_stage < MFA_DONE,
        )
        return [_ACCOUNT(row) for row in self.conn.execute(query)]

    def claim_mfa_stage(self, account_id: str, deadline: float, stage: int) -> bool:
        # One conditional UPDATE: of two nodes that reach a stage, one wins;
        # a deadline changed meanwhile makes the claim miss.
        won = self.conn.execute(
            update(accounts)
            .where(
                accounts.c.id == account_id,
                accounts.c.force_2fa.is_(True),
                accounts.c.mfa_enroll_by == deadline,
                accounts.c.mfa_stage < stage,
            )
            .values(mfa_stage=stage)
        ).rowcount
        return bool(won)

    def restart_mfa_stage(self, account_id: str) -> None:
        self.conn.execute(update(accounts).where(accounts.c.id == account_id).values(mfa_stage=0))

    def end_trust(self, account_id: str) -> int:
        """Atomically bump the account's trust epoch (every trusted device of
        the account stops counting); returns the new epoch."""
        row = self.conn.execute(
            update(accounts)
            .where(accounts.c.id == account_id)
            .values(trust_epoch=accounts.c.trust_epoch + 1)
            .returning(accounts.c.trust_epoch)
        ).one()
        return int(row.trust_epoch)
