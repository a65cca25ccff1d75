"""The one outbox reader: what the service mailed, and the reset links in it.

Tests read the outbox table (through the store) rather than an SMTP server:
the mail is queued in the same transaction as the change it reports.
"""

from __future__ import annotations

from quatrix_mfa.core.context import Core
from quatrix_mfa.core.mail import readable_body
from quatrix_mfa.core.model import Mail
from tests.support import secrets_grep

RESET_PATH = "/reset-password/"


def mails(core: Core, to: str | None = None) -> list[Mail]:
    """Every queued or sent mail (to ``to`` only, if given), oldest first."""
    with core.store.transaction(write=False) as tx:
        return [m for m in tx.outbox.list() if to is None or m.to == to]


def texts(core: Core, to: str) -> list[str]:
    """The mails to ``to`` as ``subject + "\\n" + body`` (as mailed: a sealed
    link opened), oldest first."""
    return [m.subject + "\n" + _opened(core, m) for m in mails(core, to)]


def reset_links(core: Core, to: str) -> list[str]:
    """Every password (re)set link mailed to ``to``, oldest first."""
    return [
        line.strip()
        for body in bodies(core, to)
        for line in body.splitlines()
        if RESET_PATH in line
    ]


def latest_link(core: Core, email: str) -> str:
    """The newest (re)set link mailed to ``email``; fails if there is none."""
    links = reset_links(core, email)
    assert links, f"no mail with a link to {email}"
    return links[-1]


def latest_reset_id(core: Core, email: str) -> str:
    """The reset id of the newest link mailed to ``email`` (its last path segment)."""
    return latest_link(core, email).rsplit("/", 1)[1]


def bodies(core: Core, to: str) -> list[str]:
    """The bodies of the mails to ``to`` as mailed (a sealed link opened), oldest first."""
    return [_opened(core, m) for m in mails(core, to)]


def _opened(core: Core, mail: Mail) -> str:
    """The body as mailed; its links' ids are secrets the run uses (the secrets grep)."""
    body = readable_body(core.box, mail)
    secrets_grep.mailed(body)
    return body


CONFIRM_PATH = "/confirm-email/"
RECOVERY_CANCEL_PATH = "/recover-mfa/cancel/"


def _latest_id(core: Core, email: str, path: str) -> str:
    """The last path segment of the newest link to ``path`` mailed to ``email``."""
    links = [
        line.strip() for body in bodies(core, email) for line in body.splitlines() if path in line
    ]
    assert links, f"no mail with a {path} link to {email}"
    return links[-1].rsplit("/", 1)[1]


def latest_confirm_id(core: Core, email: str) -> str:
    """The id of the newest link mailed to ``email`` that confirms a change
    of email to it (its last path segment); fails if there is none."""
    return _latest_id(core, email, CONFIRM_PATH)


def latest_recovery_cancel_id(core: Core, email: str) -> str:
    """The id of the newest link mailed to ``email`` that cancels a
    lost-device recovery; fails if there is none."""
    return _latest_id(core, email, RECOVERY_CANCEL_PATH)
