"""Admin surface: users of the caller's account and their factors.

An email is unique within an account; another account's emails are neither
refused nor reserved here (issue 17, item 7): a create or an email edit
answers code 31 only for an email of the caller's own account, and the same
as for a free email otherwise. Who signs in with an address is settled when
a password is set (core/reset.py) or a change confirmed (core/email_change.py).

Every bulk call is all-or-nothing: all ids are checked first and any id
that is unknown (another account's ids count as unknown) or breaks a rule
answers 400 with the offending ids in ``details``; nothing changes then.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from quatrix_mfa.core import audit, email_change, mail, policy
from quatrix_mfa.core.context import Context, Core
from quatrix_mfa.core.credentials import credentials_changed
from quatrix_mfa.core.errors import (
    EmailTaken,
    FactorForced,
    FactorNotActive,
    Forbidden,
    NotFound,
    ParameterError,
)
from quatrix_mfa.core.model import TWO_FA, User
from quatrix_mfa.core.ports import DuplicateEmail, Transaction
from quatrix_mfa.core.reset import issue_link, revoke_links
from quatrix_mfa.core.sessions import Caller, canonical_token
from quatrix_mfa.core.text import normalize_email

MAX_IDS = 1000
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,253}\.[^@\s.]{1,63}")


@dataclass(frozen=True)
class UserChanges:
    """The editable fields of ``POST /user/edit``; None means "leave as is"."""

    name: str | None = None
    email: str | None = None
    status: str | None = None
    super_admin: bool | None = None
    language: str | None = None


def require_admin(ctx: Context) -> Caller:
    """The caller, if a full session of an administrator; else 401 code 10 or 403."""
    caller = ctx.signed_in
    caller.require_full()
    if not caller.user.super_admin:
        raise Forbidden("Only an administrator can do this")
    return caller


def parse_email(email: str) -> str:
    cleaned = normalize_email(email)
    if len(cleaned) > 254 or not _EMAIL.fullmatch(cleaned):
        raise ParameterError.field("email", "not an email address")
    return cleaned


def parse_ids(ids: Sequence[str]) -> list[str]:
    """UUIDs, deduplicated in order; 400 naming any that is not a UUID."""
    if not ids:
        raise ParameterError.field("ids", "at least one id")
    if len(ids) > MAX_IDS:
        raise ParameterError.field("ids", f"at most {MAX_IDS} ids")
    parsed: dict[str, None] = {}
    bad = []
    for raw in ids:
        canonical = canonical_token(raw)
        if canonical is None:
            bad.append(raw[:64])
        else:
            parsed[canonical] = None
    if bad:
        raise ParameterError("Invalid ids", {"ids": bad})
    return list(parsed)


def _lock_admins(tx: Transaction, caller: Caller) -> None:
    """Before a change of users' roles or status: lock the account, so such
    changes run one at a time (on PostgreSQL two admins stepping down at once
    both saw the other still there, and the account was left with none), and
    check under the lock that the caller is still an active administrator."""
    tx.accounts.lock(caller.account.id)
    fresh = tx.users.get(caller.user.id)
    if fresh is None or not fresh.is_active or not fresh.super_admin:
        raise Forbidden("Only an administrator can do this")


def targets(tx: Transaction, caller: Caller, ids: Sequence[str]) -> list[User]:
    """The caller's account's users of ``ids`` (400 if malformed or unknown), in order."""
    wanted = parse_ids(ids)
    found = {u.id: u for u in tx.users.in_account(caller.account.id, wanted)}
    unknown = [i for i in wanted if i not in found]
    if unknown:
        raise ParameterError("Unknown ids", {"ids": unknown})
    return [found[i] for i in wanted]


def _refuse(
    error: type[ParameterError | FactorForced | FactorNotActive], msg: str, ids: list[str]
) -> None:
    if ids:
        raise error(msg, {"ids": ids})


def list_users(core: Core, ctx: Context) -> list[User]:
    caller = require_admin(ctx)
    with core.store.transaction(write=False) as tx:
        return tx.users.in_account(caller.account.id)


def get_user(core: Core, ctx: Context, user_id: str) -> User:
    caller = require_admin(ctx)
    canonical = canonical_token(user_id)
    if canonical is None:
        raise ParameterError.field("id", "not a UUID")
    with core.store.transaction(write=False) as tx:
        found = tx.users.in_account(caller.account.id, [canonical])
    if not found:
        raise NotFound("No such user")
    return found[0]


def create_user(
    core: Core,
    ctx: Context,
    name: str,
    email: str,
    super_admin: bool,
    status: str,
    language: str | None,
) -> User:
    """Create a user without a password and mail them a password-set link."""
    caller, who, now = require_admin(ctx), ctx.actor(), ctx.now
    email = parse_email(email)
    user = User(
        id=str(uuid.uuid4()),
        account_id=caller.account.id,
        email=email,
        name=name,
        created=now,
        modified=now,
        super_admin=super_admin,
        status=status,
        language=language or caller.user.language,
    )
    try:
        with core.store.transaction() as tx:
            if tx.users.in_account_by_email(caller.account.id, email) is not None:
                raise EmailTaken()
            tx.users.add(user)
            issue_link(core, tx, user, now, first_time=True)
            who.record(tx, now, audit.USER_CREATED, target=user.id)
    except DuplicateEmail:
        raise EmailTaken() from None
    return user


def edit_users(core: Core, ctx: Context, ids: Sequence[str], changes: UserChanges) -> list[User]:
    """Apply ``changes`` to every user in ``ids``; email only for a single user."""
    caller, who, now = require_admin(ctx), ctx.actor(), ctx.now
    new_email = parse_email(changes.email) if changes.email is not None else None
    if new_email is not None and len(parse_ids(ids)) != 1:
        raise ParameterError.field("email", "an email can be changed for one user at a time")
    try:
        with core.store.transaction() as tx:
            _lock_admins(tx, caller)
            users = targets(tx, caller, ids)
            if new_email is not None:
                _change_email(core, tx, who, users[0], new_email, now)
            disabled = []
            for user in users:
                if changes.name is not None:
                    user.name = changes.name
                if changes.language is not None:
                    user.language = changes.language
                if changes.super_admin is not None:
                    user.super_admin = changes.super_admin
                if changes.status is not None:
                    if changes.status != "A" and user.status == "A":
                        disabled.append(user.id)
                    if changes.status != "A":
                        revoke_links(tx, user.id)
                    user.status = changes.status
                user.modified = now
                tx.users.save(user)
                who.record(tx, now, audit.USER_EDITED, target=user.id)
            if tx.users.count_admins(caller.account.id) == 0:
                raise ParameterError(
                    "The account must keep an active administrator", {"ids": [u.id for u in users]}
                )
            for user in users:
                if user.id in disabled:
                    credentials_changed(tx, user, "user_disabled", now)
    except DuplicateEmail:
        raise EmailTaken() from None
    return users


def _change_email(
    core: Core, tx: Transaction, who: audit.Actor, user: User, new_email: str, now: float
) -> None:
    """A user with a password signs in with their email: the change waits for
    the new address to confirm it (the answer the same whether another account
    holds it or not). A user without one gets it at once, and a new invitation."""
    if new_email == user.email:
        email_change.cancel_change(tx, user)
        return
    if tx.users.in_account_by_email(user.account_id, new_email) is not None:
        raise EmailTaken()
    if user.password_hash is not None:
        email_change.request_change(core, tx, user, new_email, now)
        who.record(tx, now, audit.EMAIL_CHANGE_REQUESTED, target=user.id)
        return
    mail.email_changed(tx, user.email, new_email, now)
    user.email = new_email
    revoke_links(tx, user.id)  # mailed to the old address, pending changes too
    issue_link(core, tx, user, now, first_time=True)


def delete_users(core: Core, ctx: Context, ids: Sequence[str]) -> str:
    """Delete users (never the caller); returns a job id, the work is already done."""
    caller, who, now = require_admin(ctx), ctx.actor(), ctx.now
    with core.store.transaction() as tx:
        _lock_admins(tx, caller)
        users = targets(tx, caller, ids)
        _refuse(
            ParameterError,
            "You cannot delete yourself",
            [u.id for u in users if u.id == caller.user.id],
        )
        for user in users:
            who.record(tx, now, audit.USER_DELETED, target=user.id)
            revoke_links(tx, user.id)
        tx.users.delete([u.id for u in users])
    return str(uuid.uuid4())


def set_factor(
    core: Core, ctx: Context, ids: Sequence[str], auth_type: str, code: str | None
) -> None:
    """Activate and force a factor for users; all their sessions close."""
    caller, who, now = require_admin(ctx), ctx.actor(), ctx.now
    factor = core.factors.for_auth_type(auth_type)
    # One hash for the one PIN the admin hands out to all of them.
    pin_hash = core.pin.hash(code or "") if factor is core.pin else None
    with core.store.transaction() as tx:
        users = targets(tx, caller, ids)
        for user in users:
            if pin_hash is None:
                user.twofa_active = user.twofa_forced = True  # enrolled at next login
            else:
                core.pin.set(tx, user, pin_hash, now)
                user.pin_forced = True
            user.modified = now
            tx.users.save(user)
            who.record(tx, now, audit.FACTOR_SET, target=user.id, factor=auth_type, forced=True)
            credentials_changed(
                tx,
                user,
                "factor_set_by_admin",
                now,
                notice=(auth_type, "set by an administrator"),
                addr=ctx.addr,
            )


def remove_factor(core: Core, ctx: Context, ids: Sequence[str], auth_type: str) -> None:
    """Turn a factor off and lift its forcing; refused while the account forces 2FA."""
    caller, who, now = require_admin(ctx), ctx.actor(), ctx.now
    with core.store.transaction() as tx:
        users = targets(tx, caller, ids)
        if auth_type == TWO_FA:
            _refuse(
                FactorForced,
                "The account forces 2FA",
                [u.id for u in users] if caller.account.force_2fa else [],
            )
            _refuse(
                FactorNotActive,
                "2FA is not active",
                [u.id for u in users if not policy.totp_chosen(u)],
            )
        else:
            _refuse(FactorNotActive, "PIN is not active", [u.id for u in users if not u.pin_active])
        factor = core.factors.for_auth_type(auth_type)
        for user in users:
            factor.remove(tx, user)
            if auth_type == TWO_FA:
                user.twofa_forced = False  # lifted with it (a PIN's forcing goes in remove)
            user.modified = now
            tx.users.save(user)
            mail.factor_removed(tx, user.email, auth_type, now, ctx.addr)
            who.record(tx, now, audit.FACTOR_REMOVED, target=user.id, factor=auth_type)
            # Trust stood in for the factors as they were (core/devices.py).
            if tx.devices.delete_for_users([user.id]):
                who.record(tx, now, audit.TRUST_REVOKED, "factor_removed", target=user.id)


def reset_factor(core: Core, ctx: Context, ids: Sequence[str]) -> None:
    """Delete users' TOTP secrets and recovery codes; 2FA stays on, so they re-enroll."""
    caller, who, now = require_admin(ctx), ctx.actor(), ctx.now
    with core.store.transaction() as tx:
        users = targets(tx, caller, ids)
        _refuse(
            FactorNotActive,
            "2FA is not active",
            [u.id for u in users if not policy.needs_totp(caller.account, u)],
        )
        for user in users:
            reset_totp(core, tx, who, user, now)


def reset_totp(
    core: Core, tx: Transaction, who: audit.Actor, user: User, now: float, **detail: Any
) -> None:
    """One user's reset 2FA, by an administrator or from the command line
    (core/breakglass.py): the TOTP secret and recovery codes go, 2FA stays on
    so they enroll again at the next sign-in, and every session of theirs ends."""
    core.totp.remove(tx, user)
    user.twofa_active = True
    user.modified = now
    tx.users.save(user)
    who.record(tx, now, audit.FACTOR_RESET, target=user.id, factor=TWO_FA, **detail)
    credentials_changed(
        tx,
        user,
        "factor_reset_by_admin",
        now,
        notice=(TWO_FA, "reset by an administrator"),
        addr=who.addr,
    )
