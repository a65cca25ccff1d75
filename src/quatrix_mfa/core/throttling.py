"""Failed-attempt throttling per user and per client address, kept in the database.

After ``threshold`` consecutive failures a key is blocked; every further
failure doubles the delay from ``base_delay`` up to ``max_delay``. A
complete login resets the user's count. The address count is not reset by
success (an attacker's own account must not launder its guesses), it decays
after a quiet ``address_window`` instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from quatrix_mfa.core.crypto import TokenHasher
from quatrix_mfa.core.errors import TooManyAttempts
from quatrix_mfa.core.ports import Transaction


@dataclass(frozen=True)
class ThrottlePolicy:
    user_threshold: int = 10
    address_threshold: int = 100
    base_delay: float = 30.0
    max_delay: float = 900.0
    address_window: float = 900.0

    def delay(self, failures: int, threshold: int) -> float:
        """Seconds blocked after the ``failures``-th consecutive failure."""
        if failures < threshold:
            return 0.0
        exponent = min(failures - threshold, 32)
        return float(min(self.base_delay * (2**exponent), self.max_delay))


class Throttle:
    def __init__(self, policy: ThrottlePolicy, tokens: TokenHasher) -> None:
        self.policy = policy
        self._tokens = tokens

    def user_key(self, email: str) -> str:
        # Keyed by the (hashed) email, not the user id: unknown emails are
        # throttled exactly like known ones, so lockouts reveal nothing.
        return "u:" + self._tokens.hash("throttle", email.lower())

    @staticmethod
    def address_key(addr: str | None) -> str:
        return "a:" + (addr or "unknown")

    def check(self, tx: Transaction, user_key: str, address_key: str, now: float) -> None:
        """Raise TooManyAttempts (429, code 13) if either key is blocked."""
        wait = 0.0
        for state in tx.throttle.states([user_key, address_key]):
            wait = max(wait, state.blocked_until - now)
        if wait > 0:
            raise TooManyAttempts(math.ceil(wait))

    def failed(self, tx: Transaction, user_key: str, address_key: str, now: float) -> None:
        """Count one failure against both keys; block the ones past threshold."""
        for state in tx.throttle.states([address_key]):
            quiet = now - state.updated > self.policy.address_window
            if quiet and state.blocked_until <= now:
                tx.throttle.clear(address_key)
        for key, threshold in (
            (user_key, self.policy.user_threshold),
            (address_key, self.policy.address_threshold),
        ):
            failures = tx.throttle.add_failure(key, now)
            delay = self.policy.delay(failures, threshold)
            if delay:
                tx.throttle.block_until(key, now + delay)

    def succeeded(self, tx: Transaction, user_key: str) -> None:
        tx.throttle.clear(user_key)
