"""Delivery of the outbox over SMTP, away from any request.

Each process runs one sender loop. Rows are claimed with a lease (a
conditional UPDATE), so several processes never send the same mail twice
at once; a failed send is retried with a growing delay. A sealed link is
opened into its mail only here, at the moment of sending (core/mail.py).
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from urllib.parse import urlsplit

from quatrix_mfa.core.clock import Clock
from quatrix_mfa.core.crypto import SecretBox
from quatrix_mfa.core.mail import UnreadableMail, readable_body
from quatrix_mfa.core.model import Mail
from quatrix_mfa.core.ports import Store

log = logging.getLogger(__name__)
LEASE_SECONDS = 60.0
BATCH = 20


def retry_delay(attempts: int) -> float:
    return float(min(30 * 2 ** max(attempts - 1, 0), 3600))


class OutboxSender:
    def __init__(
        self, store: Store, clock: Clock, box: SecretBox, smtp_url: str, mail_from: str
    ) -> None:
        parts = urlsplit(smtp_url)
        self._host = parts.hostname or "localhost"
        self._port = parts.port or 25
        self._store = store
        self._clock = clock
        self._box = box
        self._from = mail_from

    def deliver_due(self) -> int:
        """Send what is due now; returns how many were sent."""
        now = self._clock.now()
        with self._store.transaction() as tx:
            due = tx.outbox.claim_due(now, LEASE_SECONDS, BATCH)
        sent = 0
        for mail in due:
            assert mail.id is not None
            try:
                self._send(mail)
            except (OSError, smtplib.SMTPException, UnreadableMail) as error:
                log.warning(
                    "mail %s to SMTP failed (attempt %s): %s",
                    mail.id,
                    mail.attempts,
                    type(error).__name__,
                )
                with self._store.transaction() as tx:
                    tx.outbox.mark_failed(
                        mail.id, self._clock.now() + retry_delay(mail.attempts), str(error)
                    )
            else:
                sent += 1
                with self._store.transaction() as tx:
                    tx.outbox.mark_sent(mail.id, self._clock.now())
        return sent

    def _send(self, mail: Mail) -> None:
        message = EmailMessage()
        message["From"] = self._from
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(readable_body(self._box, mail))
        with smtplib.SMTP(self._host, self._port, timeout=10) as smtp:
            smtp.send_message(message)
