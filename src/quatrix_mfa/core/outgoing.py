"""Whether a queued mail may still go out (issue 15, item 8).

Mail waits in the outbox until a sender delivers it, which may be long after
it was queued: SMTP was down, or configured only later (the first start-up
with SMTP once sent 85 stale mails, among them an administrator's link that
had been used). A mail is only worth sending while the link it carries
works: a password link or an email confirmation that was used, expired or
revoked (its user deleted, disabled or given another email) is dropped, not
sent. Mail without a link (security notices) and the notice of a started
lost-device recovery (its link cancels, and the notice matters even once the
recovery ended) always go out.
"""

from __future__ import annotations

from quatrix_mfa.core import email_change, reset
from quatrix_mfa.core.context import Core
from quatrix_mfa.core.mail import sealed_link
from quatrix_mfa.core.model import Mail
from quatrix_mfa.core.ports import Transaction


def stale(core: Core, tx: Transaction, mail: Mail, now: float) -> str | None:
    """Why ``mail`` must not be sent any more, or None if it may.

    The link is told by how core spells it (``LinkPolicy``): the id is its
    last segment, looked up under the keyed hash of its kind. Raises
    UnreadableMail if the sealed link does not open.
    """
    link = sealed_link(core.box, mail)
    if link is None:
        return None
    link_id = link.rstrip("/").rsplit("/", 1)[-1]
    if link == core.links.link(link_id):
        # reset._hash / email_change._hash: the one keyed hash of each kind.
        id_hash = reset._hash(core, link_id)
    elif link == core.links.email_link(link_id):
        id_hash = email_change._hash(core, link_id)
    else:
        return None
    found = tx.resets.get(id_hash)
    user = tx.users.get(found.user_id) if found is not None else None
    if found is None or user is None:
        # Redeeming a link revokes all of the user's (core/reset.py): gone too.
        return "dropped: the link was used or revoked, or its user deleted"
    if found.used_at is not None:
        return "dropped: the link was used"
    if now >= found.expires_at:
        return "dropped: the link expired"
    if not reset.link_usable(core, found, user, now):
        return "dropped: the user was disabled or their email changed"
    return None
