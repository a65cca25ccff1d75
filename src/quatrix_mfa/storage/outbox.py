"""The mail outbox: queued in the request's transaction, claimed and sent by
the background sender, each mail by one sender at a time."""

from __future__ import annotations

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from quatrix_mfa.core.model import NEVER, Mail
from quatrix_mfa.storage.rows import RecordReader, delete_some
from quatrix_mfa.storage.tables import outbox

_MAIL = RecordReader(Mail, outbox, renamed={"to": "to_addr"})
# A mail done with (sent or given up) keeps no body and no sealed link.
_EMPTIED: dict[str, object] = {"body": "", "secret": None, "key_id": None}


class SqlOutboxRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        # What this transaction did to mail (queued, sent, ...): counted once it commits.
        self.changes: list[str] = []

    def enqueue(self, mail: Mail) -> None:
        self.changes.append("queued")
        self.conn.execute(
            insert(outbox).values(
                to_addr=mail.to,
                subject=mail.subject,
                body=mail.body,
                secret=mail.secret,
                key_id=mail.key_id,
                created=mail.created,
                attempts=0,
                next_attempt_at=mail.next_attempt_at,
            )
        )

    def claim_due(self, now: float, lease: float, limit: int) -> list[Mail]:
        free = or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now)
        due = (
            select(outbox.c.id)
            .where(outbox.c.sent_at.is_(None), outbox.c.next_attempt_at <= now, free)
            .order_by(outbox.c.id)
            .limit(limit)
        )
        claimed: list[Mail] = []
        for mail_id in list(self.conn.execute(due).scalars()):
            # Claim each row with a conditional UPDATE: two senders never share one.
            won = self.conn.execute(
                update(outbox)
                .where(outbox.c.id == mail_id, free)
                .values(claimed_until=now + lease, attempts=outbox.c.attempts + 1)
            ).rowcount
            if won:
                row = self.conn.execute(select(outbox).where(outbox.c.id == mail_id)).one()
                claimed.append(_MAIL(row))
        return claimed

    def _set(self, mail_id: int, **values: object) -> None:
        self.conn.execute(update(outbox).where(outbox.c.id == mail_id).values(**values))

    def mark_sent(self, mail_id: int, now: float) -> None:
        # Delivered: the body and its sealed secret have done their work. Only
        # the envelope stays, for the operator, until purge_sent.
        self._set(mail_id, sent_at=now, last_error=None, **_EMPTIED)
        self.changes.append("sent")

    def mark_failed(self, mail_id: int, next_attempt_at: float, error: str) -> None:
        self.changes.append("failed")
        self._set(
            mail_id, next_attempt_at=next_attempt_at, claimed_until=None, last_error=error[:1000]
        )

    def give_up(self, mail_id: int, reason: str) -> None:
        # Never sent: nothing of it is needed any more but what the operator reads.
        self.changes.append("given_up")
        self._set(
            mail_id, next_attempt_at=NEVER, claimed_until=None, last_error=reason[:1000], **_EMPTIED
        )

    def waiting(self) -> int:
        """Mail neither sent nor given up: the outbox depth of the metrics."""
        query = select(func.count()).where(
            outbox.c.sent_at.is_(None), outbox.c.next_attempt_at < NEVER
        )
        return int(self.conn.execute(query).scalar_one())

    def list(self, limit: int = 1000) -> list[Mail]:
        # The newest ``limit``, oldest first: the mail just queued is always shown.
        query = select(outbox).order_by(outbox.c.id.desc()).limit(limit)
        return [_MAIL(r) for r in self.conn.execute(query)][::-1]

    def purge_sent(self, before: float, limit: int) -> int:
        sent = and_(outbox.c.sent_at.is_not(None), outbox.c.sent_at < before)
        # Given up (dropped or failed) as long as sent mail, counted from its queuing.
        given_up = and_(
            outbox.c.sent_at.is_(None), outbox.c.next_attempt_at >= NEVER, outbox.c.created < before
        )
        return delete_some(self.conn, outbox, outbox.c.id, or_(sent, given_up), limit)
