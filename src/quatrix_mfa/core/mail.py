"""Mail the service sends. Messages go into the outbox inside the same
transaction as the change they report; delivery happens elsewhere, later."""

from __future__ import annotations

from quatrix_mfa.core.model import Mail
from quatrix_mfa.core.ports import Transaction


def queue(tx: Transaction, to: str, subject: str, body: str, now: float) -> None:
    tx.outbox.enqueue(Mail(to=to, subject=subject, body=body, created=now, next_attempt_at=now))


def password_link_mail(to: str, link: str, now: float, *, first_time: bool) -> Mail:
    """The message carrying a password (re)set ``link``, not yet queued."""
    if first_time:
        subject = "Set your Quatrix password"
        intro = "An account was created for you. Set your password here:"
    else:
        subject = "Reset your Quatrix password"
        intro = "Someone asked to reset the password of this account. If it was you, go to:"
    body = f"{intro}\n\n{link}\n\nIf you did not expect this message, ignore it.\n"
    return Mail(to=to, subject=subject, body=body, created=now, next_attempt_at=now)


def factor_removed(tx: Transaction, to: str, factor: str, now: float) -> None:
    _notice(
        tx, to, f"The {factor} second factor", f"Your {factor} was turned off", "turned off", now
    )


def credential_changed(tx: Transaction, to: str, what: str, change: str, now: float) -> None:
    """Tell the user that a credential of theirs changed (OWASP ASVS 4.0.3 2.2.3, 2.5.5).

    ``what`` names the credential ("password", "2FA", "PIN"), ``change`` says
    what happened to it; no secret is ever part of the message.
    """
    _notice(tx, to, f"The {what}", f"Your Quatrix {what} was {change}", change, now)


def _notice(
    tx: Transaction, to: str, subject_of: str, subject: str, change: str, now: float
) -> None:
    body = (
        f"{subject_of} of your Quatrix account was {change}.\n"
        "If you did not do this, contact your administrator.\n"
    )
    queue(tx, to, subject, body, now)


def email_changed(tx: Transaction, old: str, new: str, now: float) -> None:
    body = f"The email of your Quatrix account was changed from {old} to {new}.\n"
    for to in (old, new):
        queue(tx, to, "Your Quatrix email was changed", body, now)
