"""Password (re)set links: request, inspect, redeem exactly once."""

from __future__ import annotations

import uuid

from quatrix_mfa.core import audit, mail, passwords
from quatrix_mfa.core.context import Context, Core
from quatrix_mfa.core.credentials import credentials_changed
from quatrix_mfa.core.errors import NotAuthenticated, ParameterError
from quatrix_mfa.core.model import Mail, ResetRequest, User
from quatrix_mfa.core.ports import Transaction
from quatrix_mfa.core.sessions import canonical_token
from quatrix_mfa.core.text import normalize_email

MAX_EMAILS = 50
NOBODY = ""  # a user id no user has


def issue_link(core: Core, tx: Transaction, user: User, now: float, *, first_time: bool) -> str:
    """Store a new reset request for ``user``, queue its mail, return the link."""
    request, message, link = _new_link(core, user.id, user.email, now, first_time=first_time)
    tx.resets.add(request)
    tx.outbox.enqueue(message)
    return link


def _new_link(
    core: Core, user_id: str, email: str, now: float, *, first_time: bool
) -> tuple[ResetRequest, Mail, str]:
    """A fresh reset request for ``user_id``, the mail that carries it, and its link."""
    reset_id = str(uuid.uuid4())
    lifetime = core.links.set_password_seconds if first_time else core.links.reset_seconds
    link = core.links.link(reset_id)
    request = ResetRequest(_hash(core, reset_id), user_id, now, now + lifetime)
    return request, mail.password_link_mail(email, link, now, first_time=first_time), link


def request_reset(core: Core, ctx: Context, emails: list[str]) -> list[str]:
    """Mail a reset link to each known, active email; the answer never tells which.

    One link per user per ``resend_after`` seconds, so the endpoint cannot be
    used to flood a mailbox.
    """
    if not emails or len(emails) > MAX_EMAILS:
        raise ParameterError.field("email", f"1 to {MAX_EMAILS} addresses")
    now, addr = ctx.now, ctx.addr
    with core.store.transaction() as tx:
        for email in emails:
            user = tx.users.by_email(normalize_email(email))
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


def _live(core: Core, tx: Transaction, reset_id: str, now: float) -> tuple[ResetRequest, User]:
    canonical = canonical_token(reset_id)
    if canonical is None:  # DESIGN.md: a bad UUID is a parameter error (400 code 2)
        raise ParameterError.field("id", "not a UUID")
    reset = tx.resets.get(_hash(core, canonical))
    user = tx.users.get(reset.user_id) if reset else None
    if reset is None or user is None or reset.used_at is not None or now >= reset.expires_at:
        raise NotAuthenticated("Unknown or expired password reset request")
    return reset, user


def metadata(core: Core, ctx: Context, reset_id: str) -> str:
    """The id of a live reset request; 401 (code 1) if unknown, used or expired."""
    with core.store.transaction(write=False) as tx:
        _live(core, tx, reset_id, ctx.now)
    return str(canonical_token(reset_id))


def reset_password(core: Core, ctx: Context, reset_id: str, password: str) -> str:
    """Set the password through a live link, exactly once; closes every session."""
    now, addr = ctx.now, ctx.addr
    with core.store.transaction(write=False) as tx:
        reset, user = _live(core, tx, reset_id, now)
    passwords.check_strength(password, user.email)
    hashed = core.passwords.hash(password)
    with core.store.transaction() as tx:
        if not tx.resets.consume(reset.id_hash, now):
            raise NotAuthenticated("Unknown or expired password reset request")
        fresh = tx.users.get(user.id)
        if fresh is None:
            raise NotAuthenticated("Unknown or expired password reset request")
        had_password = bool(fresh.password_hash)
        fresh.password_hash = hashed
        fresh.modified = now
        tx.users.save(fresh)
        tx.resets.delete_for_user(user.id)
        # A first password set through the welcome link is no news.
        notice = ("password", "reset") if had_password else None
        credentials_changed(tx, fresh, "password_reset", now, notice=notice)
        core.throttle.succeeded(tx, core.throttle.user_key(user.email))
        audit.record(
            tx,
            now,
            audit.PASSWORD_RESET,
            audit.SUCCESS,
            target=user.id,
            account=user.account_id,
            addr=addr,
        )
    return str(canonical_token(reset_id))
