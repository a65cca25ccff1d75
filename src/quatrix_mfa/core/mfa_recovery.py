"""Lost-device recovery with a waiting period (issue 12, item 3).

A user who knows their password but lost their second factor starts a
recovery on the pending login that asks for it (:func:`start`). It is
mailed at once to them (with a link that cancels it) and to every
administrator of the account. Any complete login of the user cancels it
(:func:`cancel_on_login`: the owner still has the factor). After the wait
(``LinkPolicy.recovery_wait_seconds``), or once an administrator approves
it, the user's next password login removes their 2FA secret, recovery
codes and PIN, closes their sessions and asks them to enroll again
(:func:`complete_if_ready`), as an administrator's ``reset-mfa`` does.

Every state change is one conditional UPDATE of the recovery's row (open to
cancelled, completed or approved), so of two nodes one wins; at most one
recovery per user is open (a partial unique index, and the user row locked).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from quatrix_mfa.core import audit, mail
from quatrix_mfa.core.admin import require_admin, targets
from quatrix_mfa.core.context import Context, Core
from quatrix_mfa.core.credentials import credentials_changed
from quatrix_mfa.core.errors import Forbidden, NotAuthenticated, ParameterError
from quatrix_mfa.core.model import Account, MfaRecovery, RecoveryState, Step, User
from quatrix_mfa.core.ports import Transaction
from quatrix_mfa.core.sessions import SESSION_FIELD, canonical_token

# The steps a recovery may start from: the factors a lost device takes along.
RECOVERABLE = (Step.TOTP, Step.PIN)
UNKNOWN = "Unknown or closed recovery"


def _hash(core: Core, recovery_id: str) -> str:
    return core.tokens.hash("mfa-recovery", recovery_id)


def start(core: Core, ctx: Context) -> float:
    """Start a recovery for the caller's user (a pending login at the 2FA or
    PIN step); returns when it is ready. A second request answers the open
    recovery's time and mails nothing again."""
    caller, now, addr = ctx.signed_in, ctx.now, ctx.addr
    if caller.pending_step not in RECOVERABLE:
        raise ParameterError.field(
            SESSION_FIELD, "only a login waiting for a 2FA code or a PIN can start a recovery"
        )
    if not caller.account.mfa_self_recovery:
        raise Forbidden("Recovery is turned off for this account: ask your administrator")
    with core.store.transaction() as tx:
        user = tx.users.get(caller.user.id)  # locks the row: one open recovery per user
        if user is None or not user.is_active or user.credential_epoch != caller.session.epoch:
            raise NotAuthenticated()
        found = tx.recoveries.open_for_user(user.id)
        if found is not None:
            return found.ready_at
        recovery_id = str(uuid.uuid4())
        ready_at = now + core.links.recovery_wait_seconds
        tx.recoveries.add(
            MfaRecovery(_hash(core, recovery_id), user.id, user.account_id, now, ready_at)
        )
        ready = mail.moment(ready_at)
        cancel = "cancel it with the link above and change your password at once."
        link = core.links.recovery_link(recovery_id)
        notice = mail.sealed_notice(
            core.box, user.email, "recovery_started", link, now, addr, ready_at=ready, advice=cancel
        )
        tx.outbox.enqueue(notice)
        for admin in _admins(tx, user):
            mail.security_notice(
                tx,
                admin.email,
                "recovery_started_admin",
                now,
                addr,
                footer_name="footer_admin",
                user=user.email,
                ready_at=ready,
                advice="in the admin console, on the user's page.",
            )
        ctx.actor().record(tx, now, audit.RECOVERY_STARTED, target=user.id, ready_at=ready_at)
    return ready_at


def _admins(tx: Transaction, user: User) -> list[User]:
    return [
        u
        for u in tx.users.in_account(user.account_id)
        if u.super_admin and u.is_active and u.id != user.id
    ]


def cancel_by_link(core: Core, ctx: Context, recovery_id: str) -> None:
    """The mailed link: cancel the recovery. 400 if ``recovery_id`` is no
    UUID; 401 (code 1) if it is unknown or no longer open."""
    canonical = canonical_token(recovery_id)
    if canonical is None:
        raise ParameterError.field("id", "not a UUID")
    now = ctx.now
    with core.store.transaction() as tx:
        found = tx.recoveries.get(_hash(core, canonical))
        if found is None or not tx.recoveries.close(found.id_hash, RecoveryState.CANCELLED, now):
            raise NotAuthenticated(UNKNOWN)
        user = tx.users.get(found.user_id)
        if user is not None:
            who = audit.Actor(None, user.account_id, ctx.addr)
            _cancelled(tx, who, user, now, "with the link in the mail")


def cancel_on_login(
    tx: Transaction, who: audit.Actor, user: User, now: float, *, by_device: bool = False
) -> None:
    """A complete login shows the owner still has access: their open
    recovery, if any, is cancelled. ``by_device``: the login went through a
    trusted device (core/devices.py), not the second factor, and the mail
    and the audit row say so rather than claim the factor was used."""
    found = tx.recoveries.open_for_user(user.id)
    if found is not None and tx.recoveries.close(found.id_hash, RecoveryState.CANCELLED, now):
        how = "by a sign-in from a trusted device" if by_device else _BY_FACTOR
        _cancelled(tx, who, user, now, how)


_BY_FACTOR = "by a sign-in with your second factor"


def _cancelled(tx: Transaction, who: audit.Actor, user: User, now: float, how: str) -> None:
    mail.security_notice(tx, user.email, "recovery_cancelled", now, who.addr, how=how)
    who.record(tx, now, audit.RECOVERY_CANCELLED, target=user.id, how=how)


def complete_if_ready(
    core: Core, tx: Transaction, ctx: Context, user: User, account: Account
) -> bool:
    """In a password login's transaction: if the user's recovery is ready
    (waited out while self-recovery is on, or approved), complete it: their
    2FA secret, recovery codes and PIN go, their sessions close, and 2FA
    stays on so that this login asks them to enroll again. True if it did."""
    now = ctx.now
    found = tx.recoveries.open_for_user(user.id)
    if found is None or now < found.ready_at:
        return False
    if found.approved_by is None and not account.mfa_self_recovery:
        return False  # turned off meanwhile: only an administrator's approval completes it
    if not tx.recoveries.close(found.id_hash, RecoveryState.COMPLETED, now):
        return False
    core.totp.remove(tx, user)
    # A PIN an administrator requires stays unless an administrator approved:
    # the user cannot lift the admin's rule by waiting.
    if not (user.pin_forced and found.approved_by is None):
        core.pin.remove(tx, user)
    user.twofa_active = True  # enrolled again at this login, as after reset-mfa
    user.modified = now
    tx.users.save(user)
    credentials_changed(tx, user, "mfa_recovered", now)
    mail.security_notice(tx, user.email, "recovery_completed", now, ctx.addr)
    audit.Actor(None, account.id, ctx.addr).record(
        tx, now, audit.RECOVERY_COMPLETED, target=user.id
    )
    return True


def open_recoveries(core: Core, ctx: Context, ids: Sequence[str]) -> dict[str, MfaRecovery]:
    """The open recoveries of the account's users ``ids``, by user id (admin)."""
    caller = require_admin(ctx)
    with core.store.transaction(write=False) as tx:
        users = targets(tx, caller, ids)
        found = tx.recoveries.open_in_account(caller.account.id, [u.id for u in users])
    return {r.user_id: r for r in found}


def approve(core: Core, ctx: Context, ids: Sequence[str]) -> None:
    """An administrator lets the users' open recoveries complete at their next
    password login, without the wait. Approving one already approved changes
    nothing and mails nothing (it is still a success)."""
    _decide(core, ctx, ids, approve=True)


def cancel(core: Core, ctx: Context, ids: Sequence[str]) -> None:
    """An administrator cancels the users' open recoveries."""
    _decide(core, ctx, ids, approve=False)


def _decide(core: Core, ctx: Context, ids: Sequence[str], *, approve: bool) -> None:
    caller, now, who = require_admin(ctx), ctx.now, ctx.actor()
    with core.store.transaction() as tx:
        users = targets(tx, caller, ids)
        found = {
            r.user_id: r
            for r in tx.recoveries.open_in_account(caller.account.id, [u.id for u in users])
        }
        missing = [u.id for u in users if u.id not in found]
        if missing:
            raise ParameterError("No open recovery", {"ids": missing})
        for user in users:
            id_hash = found[user.id].id_hash
            if approve:
                # An approved one stays as the first approval left it: no
                # second mail to the user, no second audit row.
                if tx.recoveries.approve(id_hash, caller.user.id, now):
                    mail.security_notice(tx, user.email, "recovery_approved", now, ctx.addr)
                    who.record(tx, now, audit.RECOVERY_APPROVED, target=user.id)
            elif tx.recoveries.close(id_hash, RecoveryState.CANCELLED, now):
                _cancelled(tx, who, user, now, "by an administrator")
