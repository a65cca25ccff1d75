"""The one rule for a secret that is slow to check (a password, a PIN):
count the attempt, check slowly, forgive.

The attempt is counted as a failure *before* its argon2 hash is checked, in a
write transaction that holds the throttle rows, so guesses sent in parallel
cannot all pass the throttle before the first of them is counted. The slow
check then runs outside any transaction. A success takes the count back
(:meth:`Throttle.forgive`) in the transaction that writes its result; a
failure leaves it counted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from quatrix_mfa.core.context import Core
from quatrix_mfa.core.ports import Transaction
from quatrix_mfa.core.throttling import Admission, Keys

T = TypeVar("T")


def count_attempt(
    core: Core, keys: Keys, now: float, read: Callable[[Transaction], T | None] | None = None
) -> tuple[Admission, T | None]:
    """Count one attempt against ``keys`` and return it with what ``read`` read
    in the same transaction, or raise TooManyAttempts (nothing counted then).

    ``read`` runs first: every writer of a user takes the user row before the
    throttle rows, else a login and a code check of one user deadlock on
    PostgreSQL.
    """
    with core.store.transaction() as tx:
        value = read(tx) if read is not None else None
        return core.throttle.admit(tx, keys.user, keys.address, now), value
