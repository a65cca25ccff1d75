"""Login: the password step (200/207) and the second-factor step (DESIGN.md, "Login")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from quatrix_mfa.core import audit, devices, ipallow, mail, mfa_recovery, policy
from quatrix_mfa.core.attempts import count_attempt
from quatrix_mfa.core.context import Context, Core
from quatrix_mfa.core.errors import (
    AddressNotAllowed,
    NotAuthenticated,
    ParameterError,
    PendingSession,
    TooManyAttempts,
    WrongCode,
)
from quatrix_mfa.core.factors import Match, SecondFactor, drift
from quatrix_mfa.core.model import SessionKind, Step, ThrottleState
from quatrix_mfa.core.ports import Transaction
from quatrix_mfa.core.sessions import SESSION_FIELD, Caller, count_wrong_code, open_session
from quatrix_mfa.core.text import normalize_email
from quatrix_mfa.core.throttling import Keys


@dataclass(frozen=True)
class LoginResult:
    """A session token and, when pending, the step it waits for (its ``Mfa-Code``)."""

    token: str
    step: Step | None = None
    # While the account's 2FA grace period runs, the deadline a user without
    # 2FA must enroll by (the API's ``Mfa-Enroll-By``, core/rollout.py).
    enroll_by: float | None = None
    # A new trusted-device token (core/devices.py), when the login's last
    # factor succeeded with "remember this device" (the API's X-Device-Token).
    device_token: str | None = None
    # A device token came with the password and was refused: why
    # (core/devices.py refusal); an edge that keeps it (the pages' cookie)
    # drops it when devices.dead_for_good says so.
    device_refused: str | None = None


# How the password shows in an authentication record (beside the factors' names).
PASSWORD = "password"  # noqa: S105 - a name, not a password


def login_with_password(
    core: Core,
    ctx: Context,
    email: str,
    password: str,
    *,
    kind: SessionKind = SessionKind.API,
    device_token: str | None = None,
) -> LoginResult:
    """Check email + password; open a full (200) or pending (207) session.

    ``kind`` is how the edge carries the session (an API token or a browser
    cookie); every later session of this login keeps it. A good trusted-device
    token of this user (``device_token``, core/devices.py) stands in for the
    second-factor steps (never for an enrollment still to be done); any other
    is audited and ignored. It is only looked at once the password is right
    and the address allowed, and throttling has admitted the attempt.

    An unknown email and a wrong password take the same path and the same
    time (a dummy argon2 verify), write the same rows and give the same 401.
    """
    now, addr = ctx.now, ctx.addr
    email = normalize_email(email)
    keys = core.throttle.keys(email, addr)
    try:
        # Counted as a failure from here on, until a success takes it back.
        admission, user = count_attempt(core, keys, now, lambda tx: tx.users.by_email(email))
    except TooManyAttempts as refusal:
        # No target: whether the email exists must not show, even here.
        raise _refuse_throttled(core, ctx, refusal, None) from None
    ok = core.passwords.verify(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        with core.store.transaction() as tx:
            audit.record(
                tx,
                now,
                audit.LOGIN_PASSWORD,
                audit.FAILURE,
                target=user.id if user else None,
                addr=addr,
            )
        raise NotAuthenticated("Wrong email or password")
    assert user.password_hash is not None
    rehashed = (
        core.passwords.hash(password) if core.passwords.needs_rehash(user.password_hash) else None
    )
    with core.store.transaction() as tx:
        # Factors as they are now, not as read before the (slow) password check;
        # read (and locked) before the throttle rows are touched. A password
        # reset or a disabling that committed meanwhile wins: the hash just
        # checked must still be the stored one.
        fresh = tx.users.get(user.id)
        if fresh is None or not fresh.is_active or fresh.password_hash != user.password_hash:
            raise NotAuthenticated("Wrong email or password")
        user = fresh
        account = tx.accounts.get(user.account_id)
        assert account is not None
        seen = audit.Actor(None, account.id, addr)
        core.throttle.forgive(tx, admission)
        if not ipallow.admits(account, addr):
            denied = True
            enroll_by = None
            seen.record(tx, now, audit.LOGIN_ADDRESS, audit.DENIED, target=user.id)
        else:
            denied = False
            mfa_recovery.complete_if_ready(core, tx, ctx, user, account)
            steps = policy.login_steps(account, user, now)
            enroll_by = policy.enroll_by(account, user, now)
            proven: tuple[str, ...] = (PASSWORD,)
            refused = None
            if device_token is not None and devices.skips(steps):
                refused = devices.refusal(core, tx, user, account, device_token, now, seen)
                if refused is None:
                    steps, proven = (), (PASSWORD, devices.DEVICE_FACTOR)
            token = open_session(core, tx, user, steps, now, proven=proven, addr=addr, kind=kind)
            if not steps:
                core.throttle.succeeded(tx, keys.user)
                by_device = devices.DEVICE_FACTOR in proven
                mfa_recovery.cancel_on_login(tx, seen, user, now, by_device=by_device)
            tx.users.record_login(user.id, None if steps else now, rehashed)
            seen.record(
                tx, now, audit.LOGIN_PASSWORD, audit.SUCCESS, target=user.id, pending=bool(steps)
            )
    if denied:
        raise AddressNotAllowed()
    return LoginResult(token, steps[0] if steps else None, enroll_by, device_refused=refused)


def session_status(core: Core, caller: Caller) -> LoginResult:
    """``GET /session/login`` with an ``X-Auth-Token``: what that session is."""
    enroll_by = policy.enroll_by(caller.account, caller.user, core.clock.now())
    return LoginResult(caller.token, caller.pending_step, enroll_by)


class _Lost(Exception):
    """The code did not redeem (wrong, replayed, or the session was used meanwhile)."""


def is_slow_check(core: Core, ctx: Context, code: str) -> bool:
    """Whether :func:`second_factor` would check ``code`` with a slow hash
    (argon2, the PIN), which must not hold up an event loop."""
    step = ctx.signed_in.pending_step
    if step is None or step is Step.ENROLL_TOTP:
        return False  # refused before any check
    return core.factors.for_step(step, code).slow


def second_factor(
    core: Core, ctx: Context, auth_type: str, code: str, *, remember: str | None = None
) -> LoginResult:
    """``POST /session/login``: check one factor on a pending session.

    Success consumes the pending session and the code in one transaction and
    opens the next session (pending for the next step, or full). A wrong code
    counts against the session (5 close it), the user and the address.
    ``remember``: the label of the device to trust (core/devices.py) if this
    is the login's last factor and it succeeds; ignored on an earlier step.
    """
    caller = ctx.signed_in
    step = caller.pending_step
    if step is None:
        raise ParameterError.field(SESSION_FIELD, "the session is not pending")
    if step is Step.ENROLL_TOTP:
        raise PendingSession("Enroll 2FA first: /profile/2fa/generate, then /profile/set-mfa")
    expected = core.factors.auth_type_of(step)
    if auth_type != expected:
        raise ParameterError.field("auth_type", f"this step needs {expected}")
    user, account = caller.user, caller.account
    seen = audit.Actor(None, account.id, ctx.addr)
    factor = core.factors.for_step(step, code)
    keys = core.throttle.keys(user.email, ctx.addr)
    try:
        if factor.slow:
            result = _check_outside(core, ctx, factor, code, keys, seen, remember)
        else:
            result = _check_inside(core, ctx, factor, code, keys, seen, remember)
    except TooManyAttempts as refusal:
        raise _refuse_throttled(core, ctx, refusal, user.id, factor=factor.name) from None
    except _Lost:
        with core.store.transaction() as tx:
            alive = _count_wrong_code(core, tx, ctx, keys, seen, factor.name, counted=factor.slow)
        raise (WrongCode() if alive else NotAuthenticated()) from None
    return result


def _check_inside(
    core: Core,
    ctx: Context,
    factor: SecondFactor[Any],
    code: str,
    keys: Keys,
    seen: audit.Actor,
    remember: str | None,
) -> LoginResult:
    """A fast factor (TOTP, recovery code): throttle check, code check, redemption
    and the next session are one write transaction. On PostgreSQL the user's row
    is locked first, so parallel guesses at one user queue and each sees the
    failures counted before it."""
    caller, now = ctx.signed_in, ctx.now
    user = caller.user
    with core.store.transaction() as tx:
        tx.users.lock(user.id)
        throttle_states = core.throttle.check(tx, keys.user, keys.address, now)
        credential = factor.load(tx, user)
        match = None if credential is None else factor.verify(credential, user, code, now)
        if match is not None and factor.redeem(tx, user, match, now):
            if not tx.sessions.delete(caller.token_hash):
                raise _Lost()  # the session was used meanwhile: roll the code back too
            return _open_next(
                core, tx, caller, match, keys, seen, now, throttle_states, remember=remember
            )
        # The password is proven (a pending session): a TOTP code that was right
        # at another time is told apart from a wrong one (core/factors/drift.py).
        why = None
        if factor is core.totp and credential is not None:
            why = drift.explain(core.totp, tx, user, credential, code, now)
        extra: dict[str, Any] = {} if why is None else {"reason": why.reason, "offset": why.offset}
        alive = _count_wrong_code(core, tx, ctx, keys, seen, factor.name, throttle_states, **extra)
    if not alive:  # closed meanwhile by the codes sent beside this one
        raise NotAuthenticated()
    raise WrongCode(details=None if why is None else why.details())


def _check_outside(
    core: Core,
    ctx: Context,
    factor: SecondFactor[Any],
    code: str,
    keys: Keys,
    seen: audit.Actor,
    remember: str | None,
) -> LoginResult:
    """A slow factor (PIN, argon2): the attempt is counted before the hash is
    checked outside any write transaction, and taken back if the code wins."""
    caller, now = ctx.signed_in, ctx.now
    user = caller.user
    admission, credential = count_attempt(core, keys, now, lambda tx: factor.load(tx, user))
    match = None if credential is None else factor.verify(credential, user, code, now)
    if match is None:  # nothing to redeem: skip the (write-locking) transaction
        raise _Lost()
    with core.store.transaction() as tx:
        tx.users.lock(user.id)  # the user row before the throttle rows, as everywhere
        if not _redeem(tx, core, caller, factor, match, now):
            raise _Lost()
        core.throttle.forgive(tx, admission)
        return _open_next(core, tx, caller, match, keys, seen, now, remember=remember)


def _open_next(
    core: Core,
    tx: Transaction,
    caller: Caller,
    match: Match,
    keys: Keys,
    seen: audit.Actor,
    now: float,
    throttle_states: Sequence[ThrottleState] | None = None,
    *,
    remember: str | None = None,
) -> LoginResult:
    """The code won: open the next session (pending for the next step, or full),
    and when it is full and ``remember`` names a device, trust that device.

    ``throttle_states``: what :meth:`Throttle.check` read earlier in this
    transaction, if it ran in it.
    """
    user = caller.user
    session = caller.session
    remaining = session.steps[1:]
    token = open_session(
        core,
        tx,
        user,
        remaining,
        now,
        proven=(*session.factors, match.factor),
        addr=seen.addr,
        auth_time=session.auth_time,
        kind=session.kind,
    )
    device_token = None
    if not remaining:
        core.throttle.succeeded(tx, keys.user, throttle_states)
        tx.users.record_login(user.id, now, None)
        mfa_recovery.cancel_on_login(tx, seen, user, now)
        if remember is not None:
            device_token = devices.remember(core, tx, user, caller.account, now, seen, remember)
    offset = {} if match.offset is None else {"offset": match.offset}
    seen.record(
        tx, now, audit.LOGIN_FACTOR, audit.SUCCESS, target=user.id, factor=match.factor, **offset
    )
    if match.factor == core.recovery.name:
        left = str(tx.credentials.recovery_codes_left(user.id))
        mail.security_notice(tx, user.email, "recovery_code_used", now, seen.addr, left=left)
    enroll_by = policy.enroll_by(caller.account, user, now)
    return LoginResult(token, remaining[0] if remaining else None, enroll_by, device_token)


def _count_wrong_code(
    core: Core,
    tx: Transaction,
    ctx: Context,
    keys: Keys,
    seen: audit.Actor,
    factor: str,
    throttle_states: Sequence[ThrottleState] | None = None,
    *,
    counted: bool = False,
    **why: Any,
) -> bool:
    """A wrong (or replayed) code: it counts against the session (five close it),
    and against the user and the address unless :func:`count_attempt` already did.
    ``factor``: the name of the factor that checked it (totp, recovery, pin),
    chosen by the code's form, for the audit row and the metrics.

    ``throttle_states``: what :meth:`Throttle.check` read earlier in this
    transaction, if it ran in it. ``why``: the drift diagnosis (reason, step
    offset) for the audit row. Whether the session was still there
    (:func:`quatrix_mfa.core.sessions.count_wrong_code`).
    """
    user, now = ctx.signed_in.user, ctx.now
    if not counted:
        core.throttle.failed(tx, keys.user, keys.address, now, throttle_states)
    seen.record(tx, now, audit.LOGIN_FACTOR, audit.FAILURE, target=user.id, factor=factor, **why)
    return count_wrong_code(core, tx, ctx)


def _redeem(
    tx: Transaction,
    core: Core,
    caller: Caller,
    factor: SecondFactor[Any],
    match: Match,
    now: float,
) -> bool:
    # The code and the pending session are both single-use; both must be won
    # inside this one transaction or neither is spent.
    return factor.redeem(tx, caller.user, match, now) and tx.sessions.delete(caller.token_hash)


def _refuse_throttled(
    core: Core,
    ctx: Context,
    refusal: TooManyAttempts,
    target: str | None,
    factor: str = PASSWORD,
) -> TooManyAttempts:
    """Audit a refused attempt at ``factor`` (the password, or the second
    factor the code was for)."""
    with core.store.transaction() as tx:
        audit.record(
            tx, ctx.now, audit.THROTTLED, audit.DENIED, target=target, addr=ctx.addr, factor=factor
        )
    return refusal
