"""PIN: 4 to 16 digits, argon2id-hashed, checked in constant time."""

from __future__ import annotations

import re

from quatrix_mfa.core.crypto import PasswordHasher
from quatrix_mfa.core.errors import ParameterError
from quatrix_mfa.core.factors import Match
from quatrix_mfa.core.model import User
from quatrix_mfa.core.ports import Transaction

_PIN = re.compile(r"[0-9]{4,16}")


def parse_pin(code: str, field: str = "code") -> str:
    """A PIN is 4 to 16 ASCII digits (not any Unicode digit)."""
    if not _PIN.fullmatch(code):
        raise ParameterError.field(field, "PIN must be 4 to 16 digits")
    return code


class PinFactor:
    name = "pin"
    slow = True

    def __init__(self, hasher: PasswordHasher) -> None:
        self._hasher = hasher

    def load(self, tx: Transaction, user: User) -> str | None:
        return user.pin_hash

    def verify(self, credential: str, user: User, code: str, now: float) -> Match | None:
        # A malformed PIN still costs one argon2 verify, so timing says nothing.
        ok = self._hasher.verify(credential, code)
        return Match(self.name) if ok and _PIN.fullmatch(code) else None

    def redeem(self, tx: Transaction, user: User, match: Match, now: float) -> bool:
        # A PIN is reusable by nature; single use comes from consuming the session.
        return True

    def remove(self, tx: Transaction, user: User) -> None:
        user.pin_hash = None
        user.pin_forced = False

    def set(self, user: User, pin: str) -> None:
        user.pin_hash = self._hasher.hash(parse_pin(pin))
