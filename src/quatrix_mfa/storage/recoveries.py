"""Lost-device recoveries: one open per user, each closed by one atomic UPDATE."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, bindparam, insert, literal_column, select, update

from quatrix_mfa.core.model import MfaRecovery, RecoveryState
from quatrix_mfa.storage.prepared import Prepared
from quatrix_mfa.storage.rows import RecordReader, chunks
from quatrix_mfa.storage.tables import mfa_recoveries

_RECOVERY = RecordReader(MfaRecovery, mfa_recoveries, convert={"state": RecoveryState})
# A literal, not a bound value: SQLite uses the partial index only then.
_OPEN = mfa_recoveries.c.state == literal_column("'open'")
# Asked on every complete login (core/mfa_recovery.cancel_on_login): prepared,
# as SQLAlchemy's execution of it cost a fifth of a second-factor check.
_OPEN_FOR_USER = Prepared(
    select(mfa_recoveries).where(mfa_recoveries.c.user_id == bindparam("user_id"), _OPEN)
)


class SqlRecoveryRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, recovery: MfaRecovery) -> None:
        self.conn.execute(
            insert(mfa_recoveries).values(
                id_hash=recovery.id_hash,
                user_id=recovery.user_id,
                account_id=recovery.account_id,
                created=recovery.created,
                ready_at=recovery.ready_at,
                state=recovery.state.value,
                closed_at=recovery.closed_at,
                approved_by=recovery.approved_by,
            )
        )

    def open_for_user(self, user_id: str) -> MfaRecovery | None:
        row = _OPEN_FOR_USER.first(self.conn, {"user_id": user_id})
        return _RECOVERY(row) if row else None

    def open_in_account(self, account_id: str, user_ids: Sequence[str]) -> list[MfaRecovery]:
        found: list[MfaRecovery] = []
        for some in chunks(list(user_ids)):
            query = select(mfa_recoveries).where(
                mfa_recoveries.c.account_id == account_id,
                mfa_recoveries.c.user_id.in_(some),
                _OPEN,
            )
            found += [_RECOVERY(row) for row in self.conn.execute(query)]
        return found

    def get(self, id_hash: str) -> MfaRecovery | None:
        row = self.conn.execute(
            select(mfa_recoveries).where(mfa_recoveries.c.id_hash == id_hash)
        ).first()
        return _RECOVERY(row) if row else None

    def close(self, id_hash: str, state: RecoveryState, now: float) -> bool:
        won = self.conn.execute(
            update(mfa_recoveries)
            .where(mfa_recoveries.c.id_hash == id_hash, _OPEN)
            .values(state=state.value, closed_at=now)
        ).rowcount
        return bool(won)

    def approve(self, id_hash: str, by: str, now: float) -> bool:
        won = self.conn.execute(
            update(mfa_recoveries)
            .where(
                mfa_recoveries.c.id_hash == id_hash,
                _OPEN,
                mfa_recoveries.c.approved_by.is_(None),
            )
            .values(approved_by=by, ready_at=now)
        ).rowcount
        return bool(won)
