"""Second factors, one module each, all with the same small interface.

A check is split in three so that slow work (an argon2 hash) never runs
inside a write transaction and single use is enforced by the database:

* ``load(tx, user)``: read what a check needs (inside a transaction);
* ``verify(credential, user, code, now)``: pure and constant-time, no I/O;
* ``redeem(tx, user, match, now)``: the atomic check-and-set that makes the
  match single-use; False means someone else redeemed it first.

A factor whose ``verify`` costs microseconds (``slow = False``) may run all
three in one write transaction. Besides the check, every factor says whether
a user has it (``enrolled``), starts enrolling one (``begin``) and takes it
away (``remove``). Core finds factors in one :class:`~.registry.FactorRegistry`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from quatrix_mfa.core.model import Step, User
from quatrix_mfa.core.ports import Transaction

C = TypeVar("C")


@dataclass(frozen=True)
class Match:
    """Proof that a code matched; ``token`` is what redeeming consumes.

    ``credential`` names the stored credential the code matched, so that
    redeeming spends it there and nowhere else (a seed replaced meanwhile
    is left alone).
    """

    factor: str
    token: int | str | None = None
    credential: str | None = None
    # TOTP: the matched step minus the current one (-1, 0, +1), kept on the
    # credential and in the audit row (clock-drift diagnosis).
    offset: int | None = None


class SecondFactor(Protocol, Generic[C]):
    # What it is called in an authentication record (OIDC ``amr``-like):
    # "totp", "recovery", "pin".
    name: str
    # The contract's ``auth_type`` that asks for it, and the login step
    # (``Mfa-Code``) it answers.
    auth_type: str
    step: Step
    # True when ``verify`` costs a password hash (argon2): it must then run
    # outside any write transaction. False when it costs microseconds (HMAC).
    slow: bool

    def accepts(self, code: str) -> bool:
        """Whether ``code`` is spelled like one of this factor's codes (no I/O):
        picks a recovery code over a TOTP code at the same step."""
        ...

    def enrolled(self, tx: Transaction, user: User) -> bool:
        """Whether the user holds a credential of this factor."""
        ...

    def begin(self, tx: Transaction, user: User, now: float) -> object:
        """Start enrolling: a TOTP seed to prove, recovery codes to keep; a
        PIN is chosen by a person, not made here (None)."""
        ...

    def load(self, tx: Transaction, user: User) -> C | None: ...

    def verify(self, credential: C, user: User, code: str, now: float) -> Match | None: ...

    def redeem(self, tx: Transaction, user: User, match: Match, now: float) -> bool: ...

    def remove(self, tx: Transaction, user: User) -> None:
        """Turn the factor off for ``user`` (the caller saves the user)."""
        ...


class UnknownFactor(KeyError):
    """No registered factor answers that name, step or auth_type."""
