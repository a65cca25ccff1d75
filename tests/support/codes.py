"""TOTP codes on the test's fake clock: the right one, and one that is surely wrong."""

from __future__ import annotations

import base64
from typing import Protocol

from quatrix_mfa.core.clock import FakeClock
from quatrix_mfa.core.factors import totp

# Candidates for a wrong code; one of them is outside any accepted window.
_WRONG = ("918273", "364519", "720946", "582017", "407391", "861205")


class HasClock(Protocol):
    """Anything that runs on the test's fake clock (the HTTP ``Api``, a driver)."""

    @property
    def clock(self) -> FakeClock: ...


def secret_bytes(secret_b32: str) -> bytes:
    """The seed of a base32 secret as /profile/2fa/generate shows it (no padding)."""
    return base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))


def totp_code(clock: FakeClock, secret_b32: str, offset_steps: int = 0) -> str:
    """The code an authenticator app shows now (``offset_steps`` periods away)."""
    return totp.code_at(secret_bytes(secret_b32), clock.now() + offset_steps * totp.PERIOD)


def wrong_code(source: HasClock, secret_b32: str) -> str:
    """A well-formed code no step within two periods of now accepts."""
    valid = {totp_code(source.clock, secret_b32, k) for k in (-2, -1, 0, 1, 2)}
    return next(c for c in _WRONG if c not in valid)
