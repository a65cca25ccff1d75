"""A change of a signed-in user's email, confirmed from the new address.

Issue 17, item 7: emails are unique within an account, and across the service
only among users who have set a password (the sign-in identities). An
administrator who changes the email of a user with a password to any address
outside their own account gets the same answer whether the address is free or
signs in elsewhere, so the change cannot apply at once: it waits for the new
address to confirm it (:func:`request_change` mails a single-use, expiring
link there and a notice to the current address). Until then the user keeps
signing in with the old email, and the admin's answers show it.

Confirming (:func:`confirm`) switches the email only if no other user signs
in with it by then (else code 31, nothing changed, the link stays unused), in
one transaction with the atomic use of the link. The sign-in identity changed,
so every other link of the user is revoked and their sessions close.

A user without a password signs in with nothing yet: their email changes at
once (core/admin.py), and the invitation goes to the new address.
"""

from __future__ import annotations

import uuid

from quatrix_mfa.core import audit, mail
from quatrix_mfa.core.context import Context, Core
from quatrix_mfa.core.credentials import credentials_changed
from quatrix_mfa.core.errors import EmailTaken, NotAuthenticated, ParameterError
from quatrix_mfa.core.model import ResetRequest, User
from quatrix_mfa.core.ports import DuplicateEmail, Transaction
from quatrix_mfa.core.reset import (
    TAKEN_FOR_SIGN_IN,
    address_hash,
    link_usable,
    revoke_links,
    signs_in_elsewhere,
)
from quatrix_mfa.core.sessions import canonical_token


def _hash(core: Core, link_id: str) -> str:
    # Another name than password links' ("reset"): neither id works as the other.
    return core.tokens.hash("confirm-email", link_id)


def request_change(core: Core, tx: Transaction, user: User, new_email: str, now: float) -> None:
    """Mail ``new_email`` a link that makes it ``user``'s email, and the current
    address a notice; a change still pending is replaced. ``user`` is unchanged.

    The same statements whether ``new_email`` is free or another account's
    user signs in with it: the caller learns nothing from the answer or its time.
    """
    tx.resets.delete_email_changes(user.id)
    link_id = str(uuid.uuid4())
    link = ResetRequest(
        _hash(core, link_id),
        user.id,
        now,
        now + core.links.email_change_seconds,
        email_hash=address_hash(core, user.email),
        new_email=new_email,
    )
    tx.resets.add(link)
    letter = mail.email_confirm_mail(core.box, new_email, core.links.email_link(link_id), now)
    tx.outbox.enqueue(letter)
    mail.email_change_requested(tx, user.email, new_email, now)


def cancel_change(tx: Transaction, user: User) -> None:
    """Drop a pending change of ``user``'s email (set back to the one they have)."""
    tx.resets.delete_email_changes(user.id)


def _live(core: Core, tx: Transaction, link_id: str, now: float) -> tuple[ResetRequest, User]:
    canonical = canonical_token(link_id)
    if canonical is None:
        raise ParameterError.field("id", "not a UUID")
    link = tx.resets.get(_hash(core, canonical))
    user = tx.users.get(link.user_id) if link else None  # locks the row on PostgreSQL
    if link is None or user is None or link.new_email is None:
        raise NotAuthenticated("Unknown or expired email confirmation")
    if not link_usable(core, link, user, now):
        raise NotAuthenticated("Unknown or expired email confirmation")
    return link, user


def pending_address(core: Core, ctx: Context, link_id: str) -> str:
    """The address a live confirmation link would make the user's email; 401
    (code 1) if unknown, used or expired, 400 (code 2) if not a UUID."""
    with core.store.transaction(write=False) as tx:
        link, _ = _live(core, tx, link_id, ctx.now)
    assert link.new_email is not None
    return link.new_email


def confirm(core: Core, ctx: Context, link_id: str) -> None:
    """Make the link's new address its user's email, exactly once: 401 (code 1)
    for an unknown, used or expired link; 400 code 31 (nothing changed, the
    link unused) if another user signs in with the address by now."""
    now = ctx.now
    try:
        with core.store.transaction() as tx:
            link, user = _live(core, tx, link_id, now)
            new_email = link.new_email
            assert new_email is not None
            if signs_in_elsewhere(tx, new_email, user.id):
                raise EmailTaken(TAKEN_FOR_SIGN_IN)
            # Single use: one atomic check-and-set; a second confirmation
            # running at once finds it used and is refused.
            if not tx.resets.consume(link.id_hash, now):
                raise NotAuthenticated("Unknown or expired email confirmation")
            old = user.email
            user.email = new_email
            user.modified = now
            # DuplicateEmail: taken meanwhile, in the user's account or for sign-in.
            tx.users.save(user)
            revoke_links(tx, user.id)  # every link went to, or was issued for, the old one
            credentials_changed(tx, user, "email_changed", now)
            mail.email_change_confirmed(tx, old, new_email, now)
            audit.record(
                tx,
                now,
                audit.EMAIL_CHANGED,
                audit.SUCCESS,
                target=user.id,
                account=user.account_id,
                addr=ctx.addr,
            )
    except DuplicateEmail:
        raise EmailTaken(TAKEN_FOR_SIGN_IN) from None
