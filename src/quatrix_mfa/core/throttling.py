"""Failed-attempt throttling per user and per client address, kept in the database.

After ``threshold`` consecutive failures a key is blocked; every further
failure doubles the delay from ``base_delay`` up to ``max_delay``. A
complete login resets the user's count. The address count is not reset by
success (an attacker's own account must not launder its guesses), it decays
after a quiet ``address_window`` instead.

Logins use :meth:`Throttle.admit`, which counts an attempt as a failure before
the (slow) secret is checked, so guesses sent in parallel cannot all pass the
check before the first of them is counted; a success takes its attempt back.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass

from quatrix_mfa.core.crypto import TokenHasher
from quatrix_mfa.core.errors import TooManyAttempts
from quatrix_mfa.core.ipallow import client_address
from quatrix_mfa.core.model import ThrottleState
from quatrix_mfa.core.ports import Transaction
from quatrix_mfa.core.text import normalize_email


@dataclass(frozen=True)
class Admission:
    """An attempt let in by :meth:`Throttle.admit`: for each key it counted on,
    the ``blocked_until`` it set and the value before, to take it back."""

    counted: tuple[tuple[str, float, float], ...]


@dataclass(frozen=True)
class Keys:
    """The two counters one attempt is charged to: the user's (hashed) email
    and the client's network."""

    user: str
    address: str


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
        return "u:" + self._tokens.hash("throttle", normalize_email(email))

    @staticmethod
    def address_key(addr: str | None) -> str:
        return "a:" + (_client_network(addr) if addr else "unknown")

    def keys(self, email: str, addr: str | None) -> Keys:
        return Keys(self.user_key(email), self.address_key(addr))

    def check(
        self, tx: Transaction, user_key: str, address_key: str, now: float
    ) -> list[ThrottleState]:
        """Raise TooManyAttempts (429, code 13) if either key is blocked; else
        return the keys' states as read (for :meth:`succeeded` and :meth:`failed`).

        Only for checks that finish inside the caller's write transaction, with
        :meth:`failed` in the same one; a check that runs outside uses :meth:`admit`.
        """
        states = tx.throttle.states([user_key, address_key])
        wait = max((state.blocked_until - now for state in states), default=0.0)
        if wait > 0:
            raise TooManyAttempts(math.ceil(wait))
        return states

    def failed(
        self,
        tx: Transaction,
        user_key: str,
        address_key: str,
        now: float,
        seen: Sequence[ThrottleState] | None = None,
    ) -> None:
        """Count one failure against both keys; block the ones past threshold.

        ``seen``: what :meth:`check` read earlier in this same transaction
        (saves reading the address key's state again).
        """
        self._decay(tx, address_key, now, seen)
        counts = tx.throttle.add_failures([user_key, address_key], now)
        for key, failures, threshold in (
            (user_key, counts[0], self.policy.user_threshold),
            (address_key, counts[1], self.policy.address_threshold),
        ):
            delay = self.policy.delay(failures, threshold)
            if delay:
                tx.throttle.block_until(key, now + delay)

    def admit(self, tx: Transaction, user_key: str, address_key: str, now: float) -> Admission:
        """Let one attempt in, counted as a failure until :meth:`forgive`; or raise
        TooManyAttempts (429, code 13) if either key is blocked.

        Each key's check and count is one atomic statement in the caller's write
        transaction, which holds the key until it commits: racing attempts queue
        and each sees the ones before it. The caller lets the exception roll its
        transaction back, so a refused attempt counts nowhere.
        """
        self._decay(tx, address_key, now)
        wait, counted = 0.0, []
        for key, threshold in (
            (user_key, self.policy.user_threshold),
            (address_key, self.policy.address_threshold),
        ):
            state = tx.throttle.attempt(key, now)
            if state.blocked_until > now:
                wait = max(wait, state.blocked_until - now)
                continue
            delay = self.policy.delay(state.failures, threshold)
            until = now + delay if delay else state.blocked_until
            if delay:
                tx.throttle.block_until(key, until)
            counted.append((key, until, state.blocked_until))
        if wait > 0:
            raise TooManyAttempts(math.ceil(wait))
        return Admission(tuple(counted))

    def reset_keys(self, emails: Sequence[str], addr: str | None) -> list[tuple[str, int]]:
        """The counters one password-link request is charged to, in the order to
        take them: the client's network once per email asked for, then each
        (hashed) email once, in a fixed order so that two requests never hold
        each other's keys (PostgreSQL deadlocks). Their own namespace ("r"):
        asking for links never delays a login, nor a login a link."""
        keys = sorted({self.user_keys(email)[1] for email in emails})
        address = ("r" + self.address_key(addr), len(keys))
        return [address] + [(key, 1) for key in keys]

    def admit_requests(
        self, tx: Transaction, charges: Sequence[tuple[str, int]], now: float
    ) -> None:
        """Count requests that have no success to take them back (password-link
        requests): each key of :meth:`reset_keys` by its number; raise
        TooManyAttempts (429, code 13) if any key is blocked at ``now``.

        The address is held to the address threshold, each email to the user
        threshold, with the login path's doubling delay. The block is decided
        from the counts *after* the whole request is counted, so the request
        that crosses a threshold goes through and its block stands (a refused
        request rolls back its transaction and counts nowhere).
        """
        address_key = charges[0][0]
        self._decay(tx, address_key, now)
        wait = 0.0
        for key, count in charges:
            threshold = (
                self.policy.address_threshold if key == address_key else self.policy.user_threshold
            )
            state = tx.throttle.attempt(key, now)
            if state.blocked_until > now:
                wait = max(wait, state.blocked_until - now)
                continue
            for _ in range(count - 1):
                state = tx.throttle.attempt(key, now)
            delay = self.policy.delay(state.failures, threshold)
            if delay:
                tx.throttle.block_until(key, now + delay)
        if wait > 0:
            raise TooManyAttempts(math.ceil(wait))

    def user_keys(self, email: str) -> tuple[str, str]:
        """Every counter kept for ``email``: its logins' and its link requests'."""
        key = self.user_key(email)
        return key, "r" + key

    def forgive(self, tx: Transaction, admission: Admission) -> None:
        """The admitted attempt was no failure: take back its count and its block."""
        for key, blocked_until, before in admission.counted:
            tx.throttle.take_back(key, blocked_until, before)

    def _decay(
        self,
        tx: Transaction,
        address_key: str,
        now: float,
        seen: Sequence[ThrottleState] | None = None,
    ) -> None:
        """An address quiet for ``address_window`` starts over (shared addresses
        must not stay locked by failures long past)."""
        states = tx.throttle.states([address_key]) if seen is None else seen
        for state in states:
            if state.key != address_key:
                continue
            quiet = now - state.updated > self.policy.address_window
            if quiet and state.blocked_until <= now:
                tx.throttle.clear(address_key)

    def succeeded(
        self, tx: Transaction, user_key: str, seen: Sequence[ThrottleState] | None = None
    ) -> None:
        """A complete login: the user's count starts over.

        ``seen`` is what :meth:`check` read earlier in this same transaction:
        when it shows nothing counted against the user there is nothing to
        write (the common case, one statement less per login).
        """
        if seen is not None and not any(
            state.key == user_key and (state.failures or state.blocked_until) for state in seen
        ):
            return
        tx.throttle.clear(user_key)


def _client_network(addr: str) -> str:
    """What one client controls: an IPv6 host gets a whole /64 (usually more), so
    counting single IPv6 addresses would give it a fresh budget for every guess."""
    ip = client_address(addr)
    if ip is None:
        return addr
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
