"""Trusted devices: "remember this device" tokens, stored by keyed hash.

Every use and every revocation is one statement: a use is a conditional
UPDATE that checks the whole validity rule and stamps ``last_used`` at once,
so a token revoked (its row deleted) on one node is refused by the next
statement on any node; a use racing a revocation either ran first or finds
no row.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, insert, select, update

from quatrix_mfa.core.model import TrustedDevice
from quatrix_mfa.storage.rows import RecordReader, chunks
from quatrix_mfa.storage.tables import trusted_devices

_DEVICE = RecordReader(TrustedDevice, trusted_devices)
_T = trusted_devices.c


class SqlTrustedDeviceRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, device: TrustedDevice) -> None:
        self.conn.execute(
            insert(trusted_devices).values(
                token_hash=device.token_hash,
                id=device.id,
                user_id=device.user_id,
                account_id=device.account_id,
                label=device.label,
                client_addr=device.client_addr,
                created=device.created,
                last_used=device.last_used,
                expires_at=device.expires_at,
                epoch=device.epoch,
                trust_epoch=device.trust_epoch,
            )
        )

    def use(
        self,
        token_hash: str,
        user_id: str,
        epoch: int,
        trust_epoch: int,
        created_after: float,
        now: float,
    ) -> str | None:
        # The whole rule in the WHERE clause of one UPDATE (see the module doc).
        won = self.conn.execute(
            update(trusted_devices)
            .where(
                _T.token_hash == token_hash,
                _T.user_id == user_id,
                _T.epoch == epoch,
                _T.trust_epoch == trust_epoch,
                _T.expires_at > now,
                _T.created > created_after,
            )
            .values(last_used=now)
            .returning(_T.id)
        ).first()
        return None if won is None else str(won.id)

    def owner_of(self, token_hash: str) -> str | None:
        row = self.conn.execute(select(_T.user_id).where(_T.token_hash == token_hash)).first()
        return None if row is None else str(row.user_id)

    def of_user(self, user_id: str) -> list[TrustedDevice]:
        query = (
            select(trusted_devices).where(_T.user_id == user_id).order_by(_T.created.desc(), _T.id)
        )
        return [_DEVICE(row) for row in self.conn.execute(query)]

    def delete_of_user(self, user_id: str, ids: Sequence[str]) -> list[str]:
        # The owner is part of the condition: another user's ids delete nothing.
        deleted: list[str] = []
        for part in chunks(ids):
            query = (
                delete(trusted_devices)
                .where(_T.user_id == user_id, _T.id.in_(part))
                .returning(_T.id)
            )
            deleted += [str(row.id) for row in self.conn.execute(query)]
        return deleted

    def delete_for_users(self, user_ids: Sequence[str]) -> int:
        gone = 0
        for part in chunks(user_ids):
            gone += self.conn.execute(delete(trusted_devices).where(_T.user_id.in_(part))).rowcount
        return gone

    def delete_in_account(self, account_id: str, created_until: float | None = None) -> int:
        gone = delete(trusted_devices).where(_T.account_id == account_id)
        if created_until is not None:
            gone = gone.where(_T.created <= created_until)
        return int(self.conn.execute(gone).rowcount)

    def purge_expired(self, now: float, limit: int) -> int:
        some = select(_T.token_hash).where(_T.expires_at <= now).limit(limit)
        return int(
            self.conn.execute(delete(trusted_devices).where(_T.token_hash.in_(some))).rowcount
        )
