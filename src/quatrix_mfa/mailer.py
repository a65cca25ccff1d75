"""Delivery of the outbox over SMTP, away from any request.

Each process runs one sender loop. Rows are claimed with a lease (a
conditional UPDATE), so several processes never send the same mail twice
at once; a failed send is retried with a growing delay, and after
:data:`MAX_ATTEMPTS` the mail is given up (failed). A sealed link is opened
into its mail only here, at the moment of sending (core/mail.py), and a mail
whose link no longer works is dropped instead (core/outgoing.py). Where the
mail goes and how (TLS, AUTH, timeouts): smtp.py.
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from email.utils import formatdate

from quatrix_mfa.core import outgoing
from quatrix_mfa.core.context import Core
from quatrix_mfa.core.mail import UnreadableMail, readable_body
from quatrix_mfa.core.model import Mail
from quatrix_mfa.smtp import SmtpTarget, sender_domain

log = logging.getLogger(__name__)
LEASE_SECONDS = 60.0
BATCH = 20
# 30 s, 1, 2, 4, 8, 16, 32 min, then hourly: the tenth failure, some 4 h 10 min
# after the first, is the last. A password link lives an hour: long before
# then a mail carrying one is dropped as stale.
MAX_ATTEMPTS = 10


def retry_delay(attempts: int) -> float:
    return float(min(30 * 2 ** max(attempts - 1, 0), 3600))


class OutboxSender:
    def __init__(self, core: Core, smtp_url: str, mail_from: str) -> None:
        self._core = core
        self._target = SmtpTarget.parse(smtp_url)
        self._from = mail_from
        self._domain = sender_domain(mail_from)

    def deliver_due(self) -> int:
        """Send what is due now; returns how many were sent."""
        store, clock = self._core.store, self._core.clock
        now = clock.now()
        with store.transaction() as tx:
            due = tx.outbox.claim_due(now, LEASE_SECONDS, BATCH)
        sent = 0
        for mail in due:
            assert mail.id is not None
            try:
                with store.transaction(write=False) as tx:
                    dropped = outgoing.stale(self._core, tx, mail, clock.now())
                if dropped is None:
                    self._send(mail)
            except (OSError, smtplib.SMTPException, UnreadableMail) as error:
                # The error's type only: a server's answer may quote the message.
                log.warning(
                    "mail %s to SMTP failed (attempt %s): %s",
                    mail.id,
                    mail.attempts,
                    type(error).__name__,
                )
                self._failed(mail, f"{type(error).__name__}: {error}")
                continue
            with store.transaction() as tx:
                if dropped is not None:
                    log.info("mail %s not sent: %s", mail.id, dropped)
                    tx.outbox.give_up(mail.id, dropped)
                else:
                    sent += 1
                    tx.outbox.mark_sent(mail.id, clock.now())
        return sent

    def _failed(self, mail: Mail, error: str) -> None:
        assert mail.id is not None
        with self._core.store.transaction() as tx:
            if mail.attempts >= MAX_ATTEMPTS:
                tx.outbox.give_up(mail.id, f"failed after {mail.attempts} attempts: {error}")
            else:
                retry_at = self._core.clock.now() + retry_delay(mail.attempts)
                tx.outbox.mark_failed(mail.id, retry_at, error)

    def message(self, mail: Mail) -> EmailMessage:
        """The message as mailed: Date is when it was queued, and Message-ID
        is the same on every attempt, so a retry after a lost answer is a
        duplicate the recipient's side can tell (RFC 5322 §3.6.1, §3.6.4)."""
        message = EmailMessage()
        message["From"] = self._from
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Date"] = formatdate(mail.created, usegmt=True)
        message["Message-ID"] = f"<outbox.{mail.id}.{int(mail.created * 1000)}@{self._domain}>"
        message.set_content(readable_body(self._core.box, mail))
        return message

    def _send(self, mail: Mail) -> None:
        message = self.message(mail)
        with self._target.connect() as smtp:
            smtp.send_message(message)
