"""Which factors a user must present, and which of them are forced."""

from __future__ import annotations

from quatrix_mfa.core.model import PIN, TOTP_KIND, TWO_FA, Account, Step, User


def totp_chosen(user: User) -> bool:
    """2FA is on for the user themself (turned on, or forced on them by an admin),
    whatever the account says."""
    return user.twofa_active or user.twofa_forced


def needs_totp(account: Account, user: User) -> bool:
    """Whether the user must present (or enroll) TOTP at login: the one rule of
    who must have 2FA."""
    return totp_chosen(user) or account.force_2fa


def totp_forced(account: Account, user: User) -> bool:
    """Whether the user may not turn 2FA off themself."""
    return user.twofa_forced or account.force_2fa


def account_forces_now(account: Account, now: float | None) -> bool:
    """Whether the account's forced 2FA holds at ``now``: forced, and past its
    deadline if it gave one (staged enforcement, core/rollout.py). ``now``
    None: the deadline is not considered (forced means forced)."""
    if not account.force_2fa:
        return False
    deadline = account.mfa_enroll_by
    return deadline is None or now is None or now >= deadline


def enroll_by(account: Account, user: User, now: float) -> float | None:
    """The deadline a user without 2FA must enroll by, while the account's
    grace period runs (their login answers carry it); else None."""
    deadline = account.mfa_enroll_by
    if not account.force_2fa or deadline is None or now >= deadline:
        return None
    # 2FA on for the user themself (by an admin, or again after a recovery):
    # they enroll now, whatever the account's deadline says.
    return None if TOTP_KIND in user.enrolled or totp_chosen(user) else deadline


def past_enroll_by(account: Account, user: User, now: float) -> bool:
    """Whether a full session of ``user`` must end because the account's 2FA
    deadline passed and they never enrolled (on every node, at once)."""
    deadline = account.mfa_enroll_by
    passed = account.force_2fa and deadline is not None and now >= deadline
    return passed and TOTP_KIND not in user.enrolled


def login_steps(account: Account, user: User, now: float | None = None) -> tuple[Step, ...]:
    """The second-factor steps after a correct password, in order, at ``now``
    (during a grace period the account's forced 2FA does not yet apply).

    Both factors: TOTP first, then PIN (DESIGN.md). When TOTP must first be
    enrolled, the PIN is asked before enrollment, so that a fresh full session
    from ``set-mfa`` never skips a factor the user has.
    """
    steps: list[Step] = []
    if totp_chosen(user) or account_forces_now(account, now):
        if TOTP_KIND in user.enrolled:
            steps.append(Step.TOTP)
            if user.pin_active:
                steps.append(Step.PIN)
        else:
            if user.pin_active:
                steps.append(Step.PIN)
            steps.append(Step.ENROLL_TOTP)
    elif user.pin_active:
        steps.append(Step.PIN)
    return tuple(steps)


def active_methods(account: Account, user: User) -> list[str]:
    methods = [TWO_FA] if needs_totp(account, user) else []
    if user.pin_active:
        methods.append(PIN)
    return methods


def forced_methods(account: Account, user: User) -> list[str]:
    forced = [TWO_FA] if totp_forced(account, user) else []
    if user.pin_forced:
        forced.append(PIN)
    return forced


def is_on(user: User, auth_type: str) -> bool:
    """Whether the user has turned ``auth_type`` on (or had it turned on)."""
    return user.twofa_active if auth_type == TWO_FA else user.pin_active


def is_forced(account: Account, user: User, auth_type: str) -> bool:
    """Whether ``auth_type`` is forced on the user (by an admin or the account):
    the user cannot remove it (400 code 12)."""
    return forced_by(account, user, auth_type) is not None


# Who forces a factor on a user (``forced_by``): the reason a removal is refused.
BY_ADMIN = "admin"
BY_ACCOUNT = "account"


def forced_by(account: Account, user: User, auth_type: str) -> str | None:
    """Who forces ``auth_type`` on the user: an administrator for this user
    (:data:`BY_ADMIN`), the account's setting (:data:`BY_ACCOUNT`, 2FA only),
    or nobody (None)."""
    if auth_type == TWO_FA:
        if user.twofa_forced:
            return BY_ADMIN
        return BY_ACCOUNT if account.force_2fa else None
    return BY_ADMIN if user.pin_forced else None
