"""Mail the service sends. Messages go into the outbox inside the same
transaction as the change they report; delivery happens elsewhere, later.

A mail that carries a secret (a password link) never holds it in clear: its
body has :data:`LINK_SLOT` where the link goes, and the link itself is sealed
(AES-GCM under the key ring, bound to the recipient) in ``Mail.secret``. Only
:func:`readable_body`, run by the sender at delivery and by the operator's
``quatrix-mfa outbox``, puts it back; a database backup holds no working link.
Storage empties both once the mail is delivered.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from importlib import resources
from string import Template

from cryptography.exceptions import InvalidTag

from quatrix_mfa.core.crypto import SecretBox
from quatrix_mfa.core.model import Mail
from quatrix_mfa.core.ports import Transaction

LINK_SLOT = "{link}"
DELIVERED = "(delivered: the body is not kept)"


class UnreadableMail(ValueError):
    """A mail's sealed secret does not open (its key is gone from the key file)."""


def _owner(to: str) -> str:
    # The associated data: a sealed link moved to another recipient's row does not open.
    return "mail\x00" + to


def queue(tx: Transaction, to: str, subject: str, body: str, now: float) -> None:
    tx.outbox.enqueue(Mail(to=to, subject=subject, body=body, created=now, next_attempt_at=now))


def password_link_mail(box: SecretBox, to: str, link: str, now: float, *, first_time: bool) -> Mail:
    """The message carrying a password (re)set ``link`` (sealed), not yet queued."""
    if first_time:
        subject = "Set your Quatrix password"
        intro = "An account was created for you. Set your password here:"
    else:
        subject = "Reset your Quatrix password"
        intro = "Someone asked to reset the password of this account. If it was you, go to:"
    return _link_mail(box, to, subject, intro, link, now)


def email_confirm_mail(box: SecretBox, to: str, link: str, now: float) -> Mail:
    """The message to a new address carrying the ``link`` (sealed) that makes
    it the account's sign-in email, not yet queued."""
    intro = (
        "Your administrator changed the email of your Quatrix account to this address.\n"
        "You keep signing in with your old email until you confirm here:"
    )
    return _link_mail(box, to, "Confirm your new Quatrix email", intro, link, now)


def _link_mail(box: SecretBox, to: str, subject: str, intro: str, link: str, now: float) -> Mail:
    body = f"{intro}\n\n{LINK_SLOT}\n\nIf you did not expect this message, ignore it.\n"
    secret, key_id = box.seal(link.encode(), _owner(to))
    return Mail(to, subject, body, now, next_attempt_at=now, secret=secret, key_id=key_id)


def readable_body(box: SecretBox, mail: Mail) -> str:
    """The body as it is mailed: the sealed link opened into its slot. Raises
    UnreadableMail if it does not open."""
    if mail.sent_at is not None and not mail.body:
        return DELIVERED
    if mail.given_up and not mail.body:
        return f"(not sent: {mail.last_error}; the body is not kept)"
    link = sealed_link(box, mail)
    return mail.body if link is None else mail.body.replace(LINK_SLOT, link)


def sealed_link(box: SecretBox, mail: Mail) -> str | None:
    """The link sealed in ``mail``, opened; None for a mail without one.
    Raises UnreadableMail if it does not open."""
    if mail.secret is None or mail.key_id is None:
        return None
    try:
        return box.open(mail.secret, mail.key_id, _owner(mail.to)).decode()
    except (KeyError, InvalidTag):
        raise UnreadableMail(f"mail {mail.id}: its link does not open") from None


def moment(at: float) -> str:
    """A time as mails (and the API's headers) show it: RFC 3339, UTC."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# What a security mail advises if the change was not the user's doing.
ADVICE = "change your password at once and tell your administrator."


@cache
def _template(name: str) -> tuple[Template, Template]:
    """A mail template of core/mail_templates: its subject and its body."""
    text = (resources.files("quatrix_mfa.core") / "mail_templates" / f"{name}.txt").read_text()
    first, _, body = text.partition("\n")
    return Template(first.removeprefix("Subject: ")), Template(body)


def compose(
    name: str, now: float, addr: str | None, footer_name: str = "footer", **values: str
) -> tuple[str, str]:
    """(subject, body) of the security mail ``name``: what happened (its
    template), when, from which address, and what to do if it was not the
    user (the footer template ``footer_name``)."""
    subject, body = _template(name)
    _, footer = _template(footer_name)
    values.setdefault("advice", ADVICE)
    text = (
        body.substitute(values)
        + "\n"
        + footer.substitute(values, when=moment(now), addr=addr or "unknown")
    )
    return subject.substitute(values), text


def security_notice(
    tx: Transaction, to: str, name: str, now: float, addr: str | None, **values: str
) -> None:
    """Queue the security mail ``name`` (a template) to ``to``."""
    subject, body = compose(name, now, addr, **values)
    queue(tx, to, subject, body, now)


def sealed_notice(
    box: SecretBox, to: str, name: str, link: str, now: float, addr: str | None, **values: str
) -> Mail:
    """The security mail ``name`` carrying ``link`` sealed (its body has the
    slot), not yet queued."""
    subject, body = compose(name, now, addr, link=LINK_SLOT, **values)
    secret, key_id = box.seal(link.encode(), _owner(to))
    return Mail(to, subject, body, now, next_attempt_at=now, secret=secret, key_id=key_id)


def factor_removed(
    tx: Transaction, to: str, factor: str, now: float, addr: str | None = None
) -> None:
    security_notice(tx, to, "factor_removed", now, addr, what=factor)


def credential_changed(
    tx: Transaction, to: str, what: str, change: str, now: float, addr: str | None = None
) -> None:
    """Tell the user that a credential of theirs changed (OWASP ASVS 4.0.3 2.2.3, 2.5.5).

    ``what`` names the credential ("password", "2FA", "PIN"), ``change`` says
    what happened to it; no secret is ever part of the message.
    """
    security_notice(tx, to, "credential_changed", now, addr, what=what, change=change)


def email_changed(tx: Transaction, old: str, new: str, now: float) -> None:
    body = f"The email of your Quatrix account was changed from {old} to {new}.\n"
    for to in (old, new):
        queue(tx, to, "Your Quatrix email was changed", body, now)


def email_change_requested(tx: Transaction, old: str, new: str, now: float) -> None:
    """Tell the current address that a change to ``new`` waits for its confirmation."""
    body = (
        f"Your administrator asked to change the email of your Quatrix account to {new}.\n"
        "A link was mailed there; until it is followed you keep signing in with this address.\n"
        "If you did not expect this, contact your administrator.\n"
    )
    queue(tx, old, "A change of your Quatrix email was requested", body, now)


def email_change_confirmed(tx: Transaction, old: str, new: str, now: float) -> None:
    """Tell the former address that the account now signs in with ``new``."""
    body = (
        f"The email of your Quatrix account is now {new}; sign in with it from now on.\n"
        "If you did not expect this, contact your administrator.\n"
    )
    queue(tx, old, "Your Quatrix email was changed", body, now)
