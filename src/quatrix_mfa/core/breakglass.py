"""Break-glass: getting back in from the server's shell, without the API.

An authentication service is the one service nobody can log in to when its
only administrator is locked out (throttled, lost phone, forgotten password,
demoted). Whoever can run ``quatrix-mfa`` on the server can already read the
database and the key file, so these use cases need no session: their
context has no caller and the channel :attr:`Channel.CLI`. Every change has
the effects the same change by an administrator has (a reset 2FA ends the
user's sessions, a link is mailed and single-use), and every one is audited
with ``via="cli"``: no actor, the command line.

A user is named by email. Several accounts may hold one email (issue 17,
item 7); without an account the user is the one who signs in with it
(:meth:`UserRepository.by_email`), with one the account's user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quatrix_mfa.core import audit, policy
from quatrix_mfa.core.admin import reset_totp
from quatrix_mfa.core.context import Channel, Context, Core
from quatrix_mfa.core.errors import FactorNotActive, NotFound, ParameterError
from quatrix_mfa.core.model import TOTP_KIND, Account, User
from quatrix_mfa.core.ports import Transaction
from quatrix_mfa.core.reset import issue_link
from quatrix_mfa.core.sessions import canonical_token
from quatrix_mfa.core.text import normalize_email

LOCK_BATCH = 500  # users whose throttle counters one query reads


def shell_context(core: Core) -> Context:
    """The context of one command: nobody signed in, no client address."""
    return Context(None, None, core.clock.now(), Channel.CLI)


@dataclass(frozen=True)
class UserLine:
    """One user as ``user list`` shows them."""

    user: User
    account: Account
    two_factor: str  # "on" (a key enrolled), "enroll" (must enroll at sign-in), "off"
    locked_until: float | None  # the user's login or link requests are blocked until


@dataclass(frozen=True)
class Unlocked:
    user: User
    was_locked_until: float | None


def _actor(ctx: Context, user: User) -> audit.Actor:
    return audit.Actor(None, user.account_id, ctx.addr)


def _via(ctx: Context) -> str:
    return ctx.channel.value


def _account(tx: Transaction, account_id: str) -> Account:
    canonical = canonical_token(account_id)
    account = tx.accounts.get(canonical) if canonical else None
    if account is None:
        raise NotFound(f"No account {account_id}")
    return account


def _user(tx: Transaction, email: str, account_id: str | None) -> User:
    """The user ``email`` names (see the module's docstring); NotFound if none."""
    wanted = normalize_email(email)
    if account_id is None:
        user = tx.users.by_email(wanted)
    else:
        user = tx.users.in_account_by_email(_account(tx, account_id).id, wanted)
    if user is None:
        raise NotFound(f"No user {email}")
    return user


def _blocked_until(core: Core, tx: Transaction, email: str, now: float) -> float | None:
    return _locks(core, tx, [email], now).get(email)


def _two_factor(account: Account, user: User) -> str:
    if TOTP_KIND in user.enrolled:
        return "on"
    return "enroll" if policy.needs_totp(account, user) else "off"


def list_users(core: Core, ctx: Context, account_id: str | None = None) -> list[UserLine]:
    """Every user (of one account, with ``account_id``), account by account."""
    with core.store.transaction(write=False) as tx:
        found = [_account(tx, account_id)] if account_id else tx.accounts.all()
        lines: list[UserLine] = []
        for account in found:
            users = tx.users.in_account(account.id)
            for start in range(0, len(users), LOCK_BATCH):
                batch = users[start : start + LOCK_BATCH]
                locks = _locks(core, tx, [user.email for user in batch], ctx.now)
                lines.extend(
                    UserLine(user, account, _two_factor(account, user), locks.get(user.email))
                    for user in batch
                )
    return lines


def _locks(core: Core, tx: Transaction, emails: list[str], now: float) -> dict[str, float]:
    """Until when each of ``emails`` that is blocked now is blocked: one query
    for many users (an account may have 100,000)."""
    owner = {key: email for email in emails for key in core.throttle.user_keys(email)}
    until: dict[str, float] = {}
    for state in tx.throttle.states(list(owner)):
        if state.blocked_until > now:
            email = owner[state.key]
            until[email] = max(until.get(email, 0.0), state.blocked_until)
    return until


def unlock(core: Core, ctx: Context, email: str, account_id: str | None = None) -> Unlocked:
    """Clear the throttle counters kept for the user's email: their failed
    logins (password and second factor) and their password-link requests.
    The counters of client addresses stay: they are no one user's."""
    with core.store.transaction() as tx:
        user = _user(tx, email, account_id)
        was = _blocked_until(core, tx, user.email, ctx.now)
        for key in core.throttle.user_keys(user.email):
            tx.throttle.clear(key)
        _actor(ctx, user).record(tx, ctx.now, audit.USER_UNLOCKED, target=user.id, via=_via(ctx))
    return Unlocked(user, was)


def reset_mfa(core: Core, ctx: Context, email: str, account_id: str | None = None) -> User:
    """What an administrator's ``reset-mfa`` does (core/admin.py): the TOTP
    key and recovery codes go, the user enrolls again at the next sign-in,
    every session of theirs ends and they are told by mail. Refused (code
    15) for a user without 2FA, as the API refuses it."""
    with core.store.transaction() as tx:
        user = _user(tx, email, account_id)
        account = _account(tx, user.account_id)
        if not policy.needs_totp(account, user):
            raise FactorNotActive(f"2FA is not active for {user.email}")
        reset_totp(core, tx, _actor(ctx, user), user, ctx.now, via=_via(ctx))
    return user


def make_admin(core: Core, ctx: Context, email: str, account_id: str | None = None) -> User:
    """Make the user an administrator of their account. A disabled user is
    enabled too: the point is someone who can sign in and administer."""
    with core.store.transaction() as tx:
        user = _user(tx, email, account_id)
        tx.accounts.lock(user.account_id)  # as every change of who administers it
        changed: dict[str, Any] = {} if user.super_admin else {"super_admin": True}
        if not user.is_active:
            changed["status"] = "A"
        if changed:
            user.super_admin, user.status, user.modified = True, "A", ctx.now
            tx.users.save(user)
        _actor(ctx, user).record(
            tx, ctx.now, audit.USER_EDITED, target=user.id, via=_via(ctx), **changed
        )
    return user


def reset_link(core: Core, ctx: Context, email: str, account_id: str | None = None) -> str:
    """A new password link for the user, mailed to them as a requested one
    is, and returned for the operator to hand over. It sets the password
    once and expires as mailed links do (an hour; a week for a user who never
    had a password). Refused for a disabled user: the link would not work."""
    with core.store.transaction() as tx:
        user = _user(tx, email, account_id)
        if not user.is_active:
            raise ParameterError(f"{user.email} is disabled; make-admin enables an administrator")
        first_time = user.password_hash is None
        link = issue_link(core, tx, user, ctx.now, first_time=first_time)
        _actor(ctx, user).record(
            tx, ctx.now, audit.PASSWORD_LINK_ISSUED, target=user.id, via=_via(ctx)
        )
    return link
