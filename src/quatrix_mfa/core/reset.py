"""Password (re)set links: request, inspect, redeem exactly once.

A link sets a password only for the user and the address it was mailed to:
it is refused once the user is no longer active or their email is no longer
the one it went to (the row keeps a keyed hash of that email), and every
outstanding link of a user is revoked (:func:`revoke_links`) when their email
changes, they are disabled or deleted, or one of their links is redeemed.

Several users may share an email, one per account (issue 17, item 7), but
only one of them signs in with it: a link whose address another user already
signs in with is refused (code 31) and stays unused, so an invitation in one
account cannot take over an address another account's user holds.

Requests are throttled per client network and per email (their own counters,
:meth:`Throttle.admit_requests`): no login is needed to ask, so without it the
endpoint was a free write path (issue 17, defect 3).
"""

from __future__ import annotations

import hmac
import uuid

from quatrix_mfa.core import audit, mail, passwords
from quatrix_mfa.core.context import Context, Core
from quatrix_mfa.core.credentials import credentials_changed
from quatrix_mfa.core.errors import EmailTaken, NotAuthenticated, ParameterError
from quatrix_mfa.core.model import Mail, ResetRequest, User
from quatrix_mfa.core.ports import DuplicateEmail, Transaction
from quatrix_mfa.core.sessions import canonical_token
from quatrix_mfa.core.text import normalize_email

MAX_EMAILS = 50
NOBODY = ""  # a user id no user has
TAKEN_FOR_SIGN_IN = (
    "This email address already signs in to another organisation; "
    "ask your administrator to use a different address"
)


def issue_link(core: Core, tx: Transaction, user: User, now: float, *, first_time: bool) -> str:
    """Store a new reset request for ``user``, queue its mail, return the link."""
    request, message, link = _new_link(core, user.id, user.email, now, first_time=first_time)
    tx.resets.add(request)
    tx.outbox.enqueue(message)
    return link


def revoke_links(tx: Transaction, user_id: str) -> None:
    """Every outstanding link of the user stops working: their email changed,
    they were disabled or deleted, or a link of theirs set the password."""
    tx.resets.delete_for_user(user_id)


def _new_link(
    core: Core, user_id: str, email: str, now: float, *, first_time: bool
) -> tuple[ResetRequest, Mail, str]:
    """A fresh reset request for ``user_id``, the mail that carries it, and its link."""
    reset_id = str(uuid.uuid4())
    lifetime = core.links.set_password_seconds if first_time else core.links.reset_seconds
    link = core.links.link(reset_id)
    request = ResetRequest(
        _hash(core, reset_id), user_id, now, now + lifetime, email_hash=address_hash(core, email)
    )
    message = mail.password_link_mail(core.box, email, link, now, first_time=first_time)
    return request, message, link


def request_reset(core: Core, ctx: Context, emails: list[str]) -> list[str]:
    """Mail a reset link to each known, active email; the answer never tells which.

    One link per user per ``resend_after`` seconds, so the endpoint cannot be
    used to flood a mailbox.
    """
    if not emails or len(emails) > MAX_EMAILS:
        raise ParameterError.field("email", f"1 to {MAX_EMAILS} addresses")
    now, addr = ctx.now, ctx.addr
    # One round per distinct email: repeating an email in a call adds no work.
    distinct = list(dict.fromkeys(normalize_email(email) for email in emails))
    with core.store.transaction() as tx:
        # Counted before anything is read; a refusal rolls all of it back, and
        # answers 429 whatever the emails are (the keys are hashes of them).
        core.throttle.admit_requests(tx, core.throttle.reset_keys(distinct, addr), now)
        for email in distinct:
            user = tx.users.by_email(email)
            latest = tx.resets.latest_for_user(user.id if user else NOBODY)
            fresh = latest is not None and now - latest.created < core.links.resend_after
            send = user is not None and user.is_active and not fresh
            # Every email runs the same statements, so the time of the answer cannot
            # tell a registered email from an unknown one: an email that gets no
            # mail has its link offered to no user, and the database writes nothing.
            owner = user.id if user is not None and send else NOBODY
            to = user.email if user else email
            request, message, _ = _new_link(core, owner, to, now, first_time=False)
            tx.resets.add_if_user(request, message)
            audit.record(
                tx,
                now,
                audit.PASSWORD_RESET_REQUESTED,
                audit.SUCCESS,
                target=user.id if user else None,
                addr=addr,
            )
    return emails


def _hash(core: Core, reset_id: str) -> str:
    return core.tokens.hash("reset", reset_id)


def address_hash(core: Core, email: str) -> str:
    """The keyed hash a link keeps of the address it belongs to."""
    return core.tokens.hash("reset-email", normalize_email(email))


def link_usable(core: Core, link: ResetRequest, user: User, now: float) -> bool:
    """The one rule for redeeming a mailed link: it is unused and unexpired,
    its user is active, and it was issued for the email the user has now."""
    if link.used_at is not None or now >= link.expires_at:
        return False
    same_email = hmac.compare_digest(link.email_hash, address_hash(core, user.email))
    return user.is_active and same_email


def _usable(core: Core, reset: ResetRequest, user: User, now: float) -> bool:
    # A link confirming an email never sets a password (its id is hashed
    # under another name too, so it is not even found here).
    return reset.new_email is None and link_usable(core, reset, user, now)


def signs_in_elsewhere(tx: Transaction, email: str, user_id: str) -> bool:
    """Whether a user other than ``user_id`` signs in with ``email`` (has a password)."""
    holder = tx.users.by_email(email)
    return holder is not None and holder.id != user_id and holder.password_hash is not None


def _live(core: Core, tx: Transaction, reset_id: str, now: float) -> tuple[ResetRequest, User]:
    canonical = canonical_token(reset_id)
    if canonical is None:  # DESIGN.md: a bad UUID is a parameter error (400 code 2)
        raise ParameterError.field("id", "not a UUID")
    reset = tx.resets.get(_hash(core, canonical))
    user = tx.users.get(reset.user_id) if reset else None
    if reset is None or user is None or not _usable(core, reset, user, now):
        raise NotAuthenticated("Unknown or expired password reset request")
    return reset, user


def metadata(core: Core, ctx: Context, reset_id: str) -> str:
    """The id of a live reset request; 401 (code 1) if unknown, used or expired."""
    with core.store.transaction(write=False) as tx:
        _live(core, tx, reset_id, ctx.now)
    return str(canonical_token(reset_id))


def _redeemable(
    core: Core, tx: Transaction, reset_id: str, now: float
) -> tuple[ResetRequest, User]:
    """A live link whose address no other user signs in with; else 401 code 1
    or 400 code 31."""
    reset, user = _live(core, tx, reset_id, now)
    if signs_in_elsewhere(tx, user.email, user.id):
        raise EmailTaken(TAKEN_FOR_SIGN_IN)
    return reset, user


def check_redeemable(core: Core, ctx: Context, reset_id: str) -> None:
    """What redeeming would refuse before any password is typed (the page
    asks): 401 code 1 for a dead link, 400 code 31 for a taken address."""
    with core.store.transaction(write=False) as tx:
        _redeemable(core, tx, reset_id, ctx.now)


def reset_password(core: Core, ctx: Context, reset_id: str, password: str) -> str:
    """Set the password through a live link, exactly once; closes every session."""
    now, addr = ctx.now, ctx.addr
    with core.store.transaction(write=False) as tx:
        reset, user = _redeemable(core, tx, reset_id, now)
    passwords.check_strength(password, user.email)
    hashed = core.passwords.hash(password)
    try:
        _set_password(core, reset, user.id, hashed, now, addr)
    except DuplicateEmail:
        # Another user of this email set their password meanwhile (two
        # invitations redeemed at once): the unique index let one through.
        raise EmailTaken(TAKEN_FOR_SIGN_IN) from None
    return str(canonical_token(reset_id))


def _set_password(
    core: Core, reset: ResetRequest, user_id: str, hashed: str, now: float, addr: str | None
) -> None:
    with core.store.transaction() as tx:
        fresh = tx.users.get(user_id)  # locks the row on PostgreSQL
        # Checked again after the slow hash: a change meanwhile revoked the link
        # or changed what it may do (disabled, another email).
        usable = fresh is not None and _usable(core, reset, fresh, now)
        if fresh is None or not usable or not tx.resets.consume(reset.id_hash, now):
            raise NotAuthenticated("Unknown or expired password reset request")
        had_password = bool(fresh.password_hash)
        fresh.password_hash = hashed
        fresh.modified = now
        tx.users.save(fresh)  # DuplicateEmail if another user signs in with it now
        revoke_links(tx, fresh.id)
        # A first password set through the welcome link is no news.
        notice = ("password", "reset") if had_password else None
        credentials_changed(tx, fresh, "password_reset", now, notice=notice, addr=addr)
        core.throttle.succeeded(tx, core.throttle.user_key(fresh.email))
        audit.record(
            tx,
            now,
            audit.PASSWORD_RESET,
            audit.SUCCESS,
            target=fresh.id,
            account=fresh.account_id,
            addr=addr,
        )
