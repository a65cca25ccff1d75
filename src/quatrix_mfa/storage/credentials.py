"""A user's second-factor credentials: the TOTP secret with its replay guard,
a pending TOTP enrollment, and single-use recovery codes (the core port
``FactorRepository``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, or_, select, update

from quatrix_mfa.core.model import TotpEnrollment, TotpSecret
from quatrix_mfa.storage.prepared import Prepared
from quatrix_mfa.storage.rows import RecordReader, delete_some
from quatrix_mfa.storage.tables import recovery_codes, totp_enrollments, totp_secrets

# The driver may hand binary columns back as memoryview: records hold bytes.
_TOTP = RecordReader(TotpSecret, totp_secrets, convert={"ciphertext": bytes})
_ENROLLMENT = RecordReader(TotpEnrollment, totp_enrollments, convert={"ciphertext": bytes})

# Every second-factor check reads the secret and advances its step: built once
# and run on the driver's cursor (storage/prepared.py).
_TOTP_OF = Prepared(select(totp_secrets).where(totp_secrets.c.user_id == bindparam("b_user_id")))
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


class SqlFactorRepository:
    """TOTP secrets, enrollments and recovery codes (``FactorRepository``)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def totp(self, user_id: str) -> TotpSecret | None:
        found = _TOTP_OF.first(self.conn, {"b_user_id": user_id})
        return None if found is None else _TOTP(found)

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
        return None if row is None else _ENROLLMENT(row)

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
