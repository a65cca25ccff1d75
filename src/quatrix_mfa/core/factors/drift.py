"""Why a TOTP code was refused: the phone's clock is off, or the code was used.

RFC 6238 §5.2 accepts a code of the current step or one step either side.
A refused code is also compared (in constant time, like every check) with the
steps up to ``REACH_SECONDS`` either side; a match tells the person what to
fix: their phone's clock ("about N minutes behind/ahead"), or nothing but
to wait for the next code (a code already used).

The oracle this makes, and what stops it (docs/security.md, "Clock-drift
diagnosis"): only a caller who has proven the password is told, and a code
of a *future* step is worth something to such a caller: it would be accepted
once its step comes. So a refusal that names a future step first burns it
(:func:`burn`): that step's code is never accepted afterwards, on any node.
A code of a past step is dead already (the window has passed it): telling
that it was right then costs nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from quatrix_mfa.core.factors.totp import (
    DRIFT_STEPS,
    Parameters,
    TotpFactor,
    matching_steps,
    parameters_of,
    time_step,
)
from quatrix_mfa.core.model import Credential, User
from quatrix_mfa.core.ports import Transaction

REACH_SECONDS = 600  # ±10 minutes: a phone set by hand, or a zone set wrong by minutes
BURN_LIMIT = 32  # burned steps kept per seed; when full, refusals say nothing more
CLOCK = "clock"
USED = "used"


@dataclass(frozen=True)
class Diagnosis:
    """A refused code that matched ``step`` (``offset`` steps from now)."""

    reason: str  # CLOCK or USED
    step: int
    offset: int
    period: int

    @property
    def offset_seconds(self) -> int:
        """How far the phone's clock is off: negative behind, positive ahead."""
        return self.offset * self.period

    def details(self) -> dict[str, object]:
        """The ErrorModel's ``details`` (DESIGN.md, issue 13)."""
        if self.reason == CLOCK:
            return {"reason": CLOCK, "clock_offset_seconds": self.offset_seconds}
        return {"reason": USED}


def diagnose(
    secret: bytes,
    code: str,
    now: float,
    params: Parameters,
    last_step: int | None,
    burned: Collection[int],
) -> Diagnosis | None:
    """Why ``code`` was refused, if it is a code of this secret at all within
    ``REACH_SECONDS``: USED for the step last accepted (``last_step``), a step
    of the window the replay guard has passed, or a burned step: waiting for
    the next code is the fix. CLOCK for any other step outside the ±1 window
    (one older than ``last_step`` too: never accepted, and a phone behind is
    what makes it typed now). None otherwise (a wrong code, or one of the
    window that merely lost a race)."""
    current = time_step(now, params.period)
    steps = matching_steps(secret, code, now, params, REACH_SECONDS // params.period)
    if not steps:
        return None
    # Two steps sharing a code (one in a million per pair): the nearer is meant.
    step = min(steps, key=lambda s: (abs(s - current), s))
    offset = step - current
    inside = abs(offset) <= DRIFT_STEPS
    passed = last_step is not None and (step == last_step or (inside and step < last_step))
    if passed or step in burned:
        return Diagnosis(USED, step, offset, params.period)
    if inside:
        return None
    return Diagnosis(CLOCK, step, offset, params.period)


def reveals_future(found: Diagnosis) -> bool:
    """Whether telling ``found`` names a code that is not yet valid."""
    return found.reason == CLOCK and found.offset > DRIFT_STEPS


def burn(burned: Sequence[int] | None, step: int, current: int) -> list[int] | None:
    """The burned steps with ``step`` added, less those that can no longer be
    accepted anyway (behind the window: the replay window has passed them).
    None when ``BURN_LIMIT`` are still live: the caller then refuses without
    details rather than forget a burn (which would make a named code valid)."""
    live = sorted({s for s in burned or () if s >= current - DRIFT_STEPS})
    if step in live:
        return live
    if len(live) >= BURN_LIMIT:
        return None
    return sorted([*live, step])


def explain(
    totp: TotpFactor, tx: Transaction, user: User, credential: Credential, code: str, now: float
) -> Diagnosis | None:
    """What a refusal of ``code`` on a pending login may say (None: nothing).

    Runs in the refusal's transaction with the user's row locked (core/auth.py),
    so the burn of a future step commits with the failure it is counted as,
    and no check of another code of the user reads the list in between.
    """
    params = parameters_of(credential)
    secret = totp.secret_of(credential, user)
    found = diagnose(secret, code, now, params, credential.last_step, credential.burned_steps or ())
    if found is None or not reveals_future(found):
        return found
    kept = burn(credential.burned_steps, found.step, time_step(now, params.period))
    if kept is None:
        return None
    tx.credentials.set_burned_steps(user.id, credential.id, kept)
    return found
