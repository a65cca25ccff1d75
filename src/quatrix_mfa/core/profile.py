"""Self-service: profile, password change, and the caller's own factors."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from quatrix_mfa.core import audit, devices, mail, passwords, policy, reauth
from quatrix_mfa.core.attempts import count_attempt
from quatrix_mfa.core.context import Context, Core
from quatrix_mfa.core.credentials import credentials_changed, still_current
from quatrix_mfa.core.errors import (
    FactorForced,
    FactorNotActive,
    NoPendingEnrollment,
    ParameterError,
    PendingSession,
    TooManyAttempts,
    WeakPassword,
    WrongCode,
)
from quatrix_mfa.core.factors import SecondFactor
from quatrix_mfa.core.factors.pin import parse_pin
from quatrix_mfa.core.factors.totp import (
    DEFAULT,
    Parameters,
    base32,
    parameters_of,
    provisioning_uri,
)
from quatrix_mfa.core.model import TWO_FA, Step, User
from quatrix_mfa.core.ports import Transaction
from quatrix_mfa.core.sessions import Caller, count_wrong_code, reopen_session
from quatrix_mfa.core.text import has_control


@dataclass(frozen=True)
class Enrollment:
    secret: str
    uri: str
    # The seed's algorithm, digits and period (issue 13): also in ``uri``.
    params: Parameters = DEFAULT


@dataclass(frozen=True)
class FactorSet:
    token: str
    recovery_codes: list[str] | None = None


def _require_enrollment_or_full(caller: Caller) -> None:
    """A change of the caller's factors: on a full session not opened through a
    trusted device, or on a pending one that must enroll TOTP first."""
    step = caller.pending_step
    if step is not None and step is not Step.ENROLL_TOTP:
        raise PendingSession()
    devices.require_factor_proven(caller)


def _require_full_own_factors(caller: Caller) -> None:
    """A change of the caller's factors or recovery codes on a full session,
    not one opened through a trusted device (core/devices.py)."""
    caller.require_full()
    devices.require_factor_proven(caller)


def change_password(core: Core, ctx: Context, current_b64: str, new_b64: str) -> str:
    """The API's password change (both passwords base64-encoded, as the spec
    sends them): the caller's session is kept, every other one closes."""
    current = passwords.decode_base64_password(current_b64, "password")
    new = passwords.decode_base64_password(new_b64, "new_password", new=True)
    return set_password(core, ctx, current, new).email


@dataclass(frozen=True)
class PasswordChanged:
    email: str
    # With ``rotate``: the fresh session that replaced the caller's.
    token: str | None = None


def set_password(
    core: Core, ctx: Context, current: str, new: str, *, rotate: bool = False
) -> PasswordChanged:
    """Change the caller's password; every other session of the user is
    closed. ``rotate``: the caller's session closes too and a fresh one (same
    authentication record) takes its place, returned (the web pages: a new
    cookie after a change of credentials)."""
    caller, who, now = ctx.signed_in, ctx.actor(), ctx.now
    caller.require_full()
    if has_control(new):
        raise ParameterError.field("new_password", "contains a control character")
    user = caller.user
    # Taken back below unless the password was wrong.
    admission = reauth.check_current_password(core, ctx, current, audit.PASSWORD_CHANGED)
    try:
        passwords.check_strength(new, user.email)
    except WeakPassword:
        with core.store.transaction() as tx:
            core.throttle.forgive(tx, admission)
        raise
    hashed = core.passwords.hash(new)
    with core.store.transaction() as tx:
        # The user row before the throttle rows (see auth); the password just
        # checked and the session must both still be current.
        fresh = still_current(tx, user.id, user.credential_epoch, caller.token_hash)
        core.throttle.forgive(tx, admission)
        fresh.password_hash = hashed
        fresh.modified = now
        tx.users.save(fresh)
        credentials_changed(
            tx,
            fresh,
            "password_changed",
            now,
            keep=None if rotate else caller.token_hash,
            notice=("password", "changed"),
            addr=ctx.addr,
        )
        token = reopen_session(core, tx, ctx, fresh, proven=None) if rotate else None
        who.record(tx, now, audit.PASSWORD_CHANGED, audit.SUCCESS, target=user.id)
    return PasswordChanged(user.email, token)


def start_totp_enrollment(core: Core, ctx: Context) -> Enrollment:
    """A new pending TOTP secret (10 minutes); the active one is untouched."""
    caller, who, now = ctx.signed_in, ctx.actor(), ctx.now
    _require_enrollment_or_full(caller)
    user = caller.user
    with core.store.transaction() as tx:
        secret, params = core.totp.start(tx, user, now)
        who.record(
            tx, now, audit.FACTOR_ENROLL_STARTED, audit.SUCCESS, target=user.id, factor=TWO_FA
        )
    return _enrollment(caller, secret, params)


# A pending secret shown again must leave time to scan it and type a code.
REUSE_MARGIN = 120.0


def totp_enrollment(core: Core, ctx: Context) -> Enrollment:
    """The pending TOTP secret to show the caller: the one still pending, so
    that a page shown again (reloaded, or after a wrong code) shows the secret
    the person may already have scanned; a new one when none is pending or
    it would expire within ``REUSE_MARGIN``."""
    caller = ctx.signed_in
    _require_enrollment_or_full(caller)
    with core.store.transaction(write=False) as tx:
        pending = tx.credentials.enrollment(caller.user.id)
    if pending is None or pending.expires_at - ctx.now <= REUSE_MARGIN:
        return start_totp_enrollment(core, ctx)
    secret = core.totp.pending_secret(pending, caller.user)
    return _enrollment(caller, secret, parameters_of(pending))


def _enrollment(caller: Caller, secret: bytes, params: Parameters) -> Enrollment:
    issuer = caller.account.name or "Quatrix"
    uri = provisioning_uri(secret, caller.user.email, issuer, params)
    return Enrollment(base32(secret), uri, params)


def set_factor(core: Core, ctx: Context, auth_type: str, code: str) -> FactorSet:
    """Activate a factor for the caller: every session closes, a fresh full one opens."""
    if auth_type == TWO_FA:
        _require_enrollment_or_full(ctx.signed_in)
        return _set_totp(core, ctx, code)
    _require_full_own_factors(ctx.signed_in)
    return _set_pin(core, ctx, code)


def _set_totp(core: Core, ctx: Context, code: str) -> FactorSet:
    caller, who, now = ctx.signed_in, ctx.actor(), ctx.now
    user = caller.user
    keys = core.throttle.keys(user.email, ctx.addr)
    admission, enrollment = count_attempt(
        core, keys, now, lambda tx: tx.credentials.enrollment(user.id)
    )
    if enrollment is None or now >= enrollment.expires_at:
        with core.store.transaction() as tx:
            core.throttle.forgive(tx, admission)
        raise NoPendingEnrollment()
    try:
        step = core.totp.enrollment_step(enrollment, user, code, now)
    except ParameterError:  # a code of the other length: 400, nothing counted
        with core.store.transaction() as tx:
            core.throttle.forgive(tx, admission)
        raise
    if step is not None:
        with core.store.transaction() as tx:
            # Lock the user row first (PostgreSQL: SELECT ... FOR UPDATE), then
            # re-read the pending secret: racing set-mfa calls with the same code
            # queue on the lock, and each later one sees the secret already taken.
            # Read before the lock, every racer saw it and all of them enrolled.
            fresh = tx.users.get(user.id)
            current = tx.credentials.enrollment(user.id)
            if (
                fresh is not None
                and current is not None
                and core.totp.same_seed(current, enrollment, user)
            ):
                # The session must still be open and the user's credentials
                # the ones it was opened under.
                fresh = still_current(tx, user.id, user.credential_epoch, caller.token_hash)
                # ``current``: rotate-key may have re-encrypted the seed meanwhile.
                core.totp.activate(tx, fresh, current, step, now)
                codes = core.recovery.begin(tx, fresh, now)
                fresh.modified = now
                tx.users.save(fresh)
                token = _reopen(core, tx, ctx, fresh, core.totp)
                core.throttle.forgive(tx, admission)
                core.throttle.succeeded(tx, keys.user)
                return FactorSet(token, codes)
    with core.store.transaction() as tx:
        count_wrong_code(core, tx, ctx)
        who.record(tx, now, audit.FACTOR_SET, audit.FAILURE, target=user.id, factor=TWO_FA)
    raise WrongCode()


def _set_pin(core: Core, ctx: Context, code: str) -> FactorSet:
    """Hash and set a new PIN. The hash is argon2, as costly as checking a
    guess: it counts against the user and the address like one (never taken
    back, so setting PINs in a loop is throttled like guessing), and a
    session runs one such hash at a time, on any node (a claim on its row)."""
    caller, now = ctx.signed_in, ctx.now
    pin = parse_pin(code)  # a malformed PIN costs no hash and counts nothing
    keys = core.throttle.keys(caller.user.email, ctx.addr)
    count_attempt(core, keys, now, lambda tx: _claim_for_hash(core, tx, caller, now))
    try:
        hashed = core.pin.hash(pin)  # slow: before the transaction
        with core.store.transaction() as tx:
            # Whatever committed while the hash ran wins: a closed session, a
            # forced factor, a password reset.
            user_id, epoch = caller.user.id, caller.user.credential_epoch
            fresh = still_current(tx, user_id, epoch, caller.token_hash)
            core.pin.set(tx, fresh, hashed, now)
            fresh.modified = now
            tx.users.save(fresh)
            # Every session of the user closes, the claimed one with its claim.
            return FactorSet(_reopen(core, tx, ctx, fresh, core.pin))
    except BaseException:
        with core.store.transaction() as tx:
            tx.sessions.release(caller.token_hash)
        raise


def _claim_for_hash(core: Core, tx: Transaction, caller: Caller, now: float) -> None:
    """Claim the caller's session for one slow hash, or 429 while another
    request of the same session hashes. The user row first, as every writer
    of a user takes it before the session and throttle rows."""
    tx.users.lock(caller.user.id)
    until = now + core.sessions.hash_lease_seconds
    if not tx.sessions.claim(caller.token_hash, now, until):
        raise TooManyAttempts(math.ceil(core.sessions.hash_lease_seconds))


def _reopen(
    core: Core, tx: Transaction, ctx: Context, user: User, factor: SecondFactor[Any]
) -> str:
    """Close every session of the caller's user and open a fresh full one in
    the caller's place (id rotation), which keeps its authentication record."""
    who, now = ctx.actor(), ctx.now
    credentials_changed(
        tx, user, "factor_set", now, notice=(factor.auth_type, "set"), addr=ctx.addr
    )
    # Enrolling TOTP proved a code of it; setting a PIN proved nothing.
    proven = factor.name if factor.step is Step.TOTP else None
    token = reopen_session(core, tx, ctx, user, proven=proven)
    who.record(tx, now, audit.FACTOR_SET, audit.SUCCESS, target=user.id, factor=factor.auth_type)
    return token


def remove_factor(core: Core, ctx: Context, auth_type: str) -> None:
    """Turn one of the caller's factors off, unless it is forced (12) or off (15)."""
    caller, who, now = ctx.signed_in, ctx.actor(), ctx.now
    _require_full_own_factors(caller)
    factor = core.factors.for_auth_type(auth_type)
    with core.store.transaction() as tx:
        user = tx.users.get(caller.user.id)
        assert user is not None
        forcer = policy.forced_by(caller.account, user, auth_type)
        if forcer is not None:
            raise FactorForced(by=forcer)
        if not policy.is_on(user, auth_type):
            raise FactorNotActive()
        factor.remove(tx, user)
        user.modified = now
        tx.users.save(user)
        mail.factor_removed(tx, user.email, auth_type, now, ctx.addr)
        who.record(tx, now, audit.FACTOR_REMOVED, audit.SUCCESS, target=user.id, factor=auth_type)
        devices.revoke_on_change(tx, who, user, now, "factor_removed")


# Recovery codes ------------------------------------------------------------------


def recovery_codes_left(core: Core, ctx: Context) -> int:
    """How many of the caller's recovery codes are still unused."""
    caller = ctx.signed_in
    caller.require_full()
    with core.store.transaction(write=False) as tx:
        return tx.credentials.recovery_codes_left(caller.user.id)


def regenerate_recovery_codes(core: Core, ctx: Context, code: str) -> list[str]:
    """A new set of recovery codes for the caller, proven by a current TOTP
    code; the old set is dead from the same commit. Returned once, in clear.

    The code is checked like a login's: the user row locked first, throttled,
    a wrong or replayed code counted against the user and the address (401
    code 11), and its time step spent (the replay guard) in the transaction
    that replaces the codes, so one code replaces them once. No session
    closes (docs/decisions.md); every trusted device of the user is revoked
    (a change of their factors, issue 13); the change is audited and mailed.
    """
    caller, who, now = ctx.signed_in, ctx.actor(), ctx.now
    _require_full_own_factors(caller)
    keys = core.throttle.keys(caller.user.email, ctx.addr)
    with core.store.transaction() as tx:
        user = tx.users.get(caller.user.id)  # locks the row on PostgreSQL
        assert user is not None  # the session read it a moment ago; deletion cascades
        credential = core.totp.load(tx, user) if user.twofa_active else None
        if credential is None:
            raise FactorNotActive("2FA is not active: there are no recovery codes to replace")
        states = core.throttle.check(tx, keys.user, keys.address, now)
        match = core.totp.verify(credential, user, code, now)
        if match is not None and core.totp.redeem(tx, user, match, now):
            codes = core.recovery.issue(tx, user)
            mail.credential_changed(
                tx, user.email, "set of recovery codes", "replaced", now, ctx.addr
            )
            who.record(tx, now, audit.RECOVERY_CODES_REPLACED, audit.SUCCESS, target=user.id)
            # A change of the user's factors ends every trust (issue 13).
            devices.revoke_on_change(tx, who, user, now, "recovery_codes_replaced")
            return codes
        core.throttle.failed(tx, keys.user, keys.address, now, states)
        who.record(tx, now, audit.RECOVERY_CODES_REPLACED, audit.FAILURE, target=user.id)
    raise WrongCode()
