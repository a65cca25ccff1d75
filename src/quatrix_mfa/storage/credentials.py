"""A user's second-factor credentials (TOTP seeds with their replay guard,
PIN hashes, later passkeys), a pending TOTP enrollment, and single-use
recovery codes (the core port ``CredentialRepository``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, or_, select, update

from quatrix_mfa.core.model import TOTP_KIND, Credential, TotpEnrollment
from quatrix_mfa.storage.prepared import Prepared
from quatrix_mfa.storage.rows import RecordReader, chunks, delete_some
from quatrix_mfa.storage.tables import credentials, recovery_codes, totp_enrollments

# The driver may hand binary columns back as memoryview: records hold bytes.
_CREDENTIAL = RecordReader(Credential, credentials, convert={"secret": bytes})
_ENROLLMENT = RecordReader(TotpEnrollment, totp_enrollments, convert={"ciphertext": bytes})

# Every second-factor check reads the credential and advances its step: built
# once and run on the driver's cursor (storage/prepared.py).
_OF_USER = Prepared(
    select(credentials)
    .where(
        credentials.c.user_id == bindparam("b_user_id"),
        credentials.c.kind == bindparam("b_kind"),
    )
    .order_by(credentials.c.created, credentials.c.id)
)
_ADVANCE_STEP = Prepared(
    update(credentials)
    .where(
        credentials.c.user_id == bindparam("b_user_id"),
        credentials.c.id == bindparam("b_credential_id"),
        or_(
            credentials.c.last_step.is_(None),
            credentials.c.last_step < bindparam("b_step"),
        ),
    )
    .values(last_step=bindparam("b_step"), last_offset=bindparam("b_offset"))
)
# The tables whose rows are sealed under a key id (keyrotation.py).
_SEALED = {
    "credentials": (credentials, credentials.c.secret),
    "totp_enrollments": (totp_enrollments, totp_enrollments.c.ciphertext),
}


class SqlCredentialRepository:
    """Credentials, TOTP enrollments and recovery codes (``CredentialRepository``)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def of_user(self, user_id: str, kind: str) -> list[Credential]:
        rows = _OF_USER.rows(self.conn, {"b_user_id": user_id, "b_kind": kind})
        return [_CREDENTIAL(row) for row in rows]

    def add(self, credential: Credential) -> None:
        self.conn.execute(
            insert(credentials).values(
                id=credential.id,
                user_id=credential.user_id,
                kind=credential.kind,
                secret=credential.secret,
                key_id=credential.key_id,
                created=credential.created,
                last_step=credential.last_step,
                label=credential.label,
                algorithm=credential.algorithm,
                digits=credential.digits,
                period=credential.period,
                last_offset=credential.last_offset,
                burned_steps=credential.burned_steps,
            )
        )

    def delete(self, user_id: str, kind: str) -> None:
        self.conn.execute(
            delete(credentials).where(credentials.c.user_id == user_id, credentials.c.kind == kind)
        )

    def advance_step(
        self, user_id: str, credential_id: str, step: int, offset: int | None = None
    ) -> bool:
        # The replay guard: one conditional UPDATE, so of two racing workers
        # with the same code exactly one sees rowcount 1. The step offset of
        # the code (drift diagnosis) is written by the same statement.
        params = {
            "b_user_id": user_id,
            "b_credential_id": credential_id,
            "b_step": step,
            "b_offset": offset,
        }
        return _ADVANCE_STEP.rowcount(self.conn, params) == 1

    def set_burned_steps(self, user_id: str, credential_id: str, steps: Sequence[int]) -> None:
        # Called with the user's row locked (core/auth.py), like every check
        # of a code of theirs: no other writer reads the list meanwhile.
        self.conn.execute(
            update(credentials)
            .where(credentials.c.user_id == user_id, credentials.c.id == credential_id)
            .values(burned_steps=list(steps))
        )

    def drift_offsets(self, user_ids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for some in chunks(user_ids):
            query = select(credentials.c.user_id, credentials.c.last_offset).where(
                credentials.c.user_id.in_(some),
                credentials.c.kind == TOTP_KIND,
                credentials.c.last_offset.is_not(None),
                credentials.c.last_offset != 0,
            )
            found.update({row.user_id: int(row.last_offset) for row in self.conn.execute(query)})
        return found

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
                algorithm=enrollment.algorithm,
                digits=enrollment.digits,
                period=enrollment.period,
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
        for name, (table, sealed) in _SEALED.items():
            query = (
                select(table.c.user_id, sealed.label("sealed"), table.c.key_id)
                .where(table.c.key_id.is_not(None), table.c.key_id != not_key_id)
                .limit(limit)
            )
            rows.extend(
                (name, r.user_id, bytes(r.sealed), r.key_id) for r in self.conn.execute(query)
            )
        return rows[:limit]

    def reencrypt(self, table: str, user_id: str, old: bytes, new: bytes, new_key_id: str) -> bool:
        # Compare-and-set on the old ciphertext: a secret replaced meanwhile is left alone.
        target, sealed = _SEALED[table]
        result = self.conn.execute(
            update(target)
            .where(and_(target.c.user_id == user_id, sealed == old))
            .values({sealed.name: new, "key_id": new_key_id})
        )
        return result.rowcount == 1
