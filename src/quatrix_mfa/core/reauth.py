"""Proving the password again before a sensitive change.

Replacing or removing 2FA, changing or removing the PIN and replacing the
recovery codes from the web pages need a recent sign-in (the session's
``auth_time`` within ``SessionPolicy.reauth_seconds``) or the current
password given with the change: a browser left signed in must not be enough
to take over or weaken someone's second factor. The rule lives here, once;
an edge passes what the person typed (or nothing).
"""

from __future__ import annotations

from quatrix_mfa.core import audit
from quatrix_mfa.core.attempts import count_attempt
from quatrix_mfa.core.context import Context, Core
from quatrix_mfa.core.errors import ParameterError, ReauthenticationRequired
from quatrix_mfa.core.throttling import Admission

# The name core gives the current password in a refusal's details.
PASSWORD_FIELD = "password"  # noqa: S105 - a field name


def is_recent(core: Core, ctx: Context) -> bool:
    """Whether the caller's sign-in (its password step) is recent enough for a
    sensitive change without the password again."""
    return ctx.now - ctx.signed_in.session.auth_time <= core.sessions.reauth_seconds


def check_current_password(core: Core, ctx: Context, password: str, event: str) -> Admission:
    """Check the caller's current password as a guess is checked: counted
    against the user and the address before the slow hash; a wrong one stays
    counted, is audited as a failed ``event`` and refused (code 2, ``password``).
    The caller takes the count back (:meth:`Throttle.forgive`) once its change
    succeeds."""
    caller, now = ctx.signed_in, ctx.now
    user = caller.user
    admission, _ = count_attempt(core, core.throttle.keys(user.email, ctx.addr), now)
    if not core.passwords.verify(user.password_hash, password):
        with core.store.transaction() as tx:
            ctx.actor().record(tx, now, event, audit.FAILURE, target=user.id)
        raise ParameterError.field(PASSWORD_FIELD, "the current password is wrong")
    return admission


def reauthenticate(core: Core, ctx: Context, password: str) -> None:
    """Let a sensitive change through, or refuse it (code 2, ``password``).

    A recent sign-in needs nothing more; otherwise the current password must
    be given, and is checked (throttled like a login). A password given on a
    recent session is checked too: what a person types is never ignored.
    """
    ctx.signed_in.require_full()
    if not password:
        if is_recent(core, ctx):
            return
        raise ReauthenticationRequired(
            details={PASSWORD_FIELD: "enter your current password to confirm this change"}
        )
    admission = check_current_password(core, ctx, password, audit.REAUTHENTICATED)
    with core.store.transaction() as tx:
        core.throttle.forgive(tx, admission)
        ctx.actor().record(tx, ctx.now, audit.REAUTHENTICATED, target=ctx.signed_in.user.id)
