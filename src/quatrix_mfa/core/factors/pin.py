"""PIN: 4 to 16 digits, argon2id-hashed, checked in constant time."""

from __future__ import annotations

import re
import uuid

from quatrix_mfa.core.crypto import PasswordHasher
from quatrix_mfa.core.errors import ParameterError
from quatrix_mfa.core.factors import Match
from quatrix_mfa.core.model import PIN, PIN_KIND, Credential, Step, User
from quatrix_mfa.core.ports import Transaction

_PIN = re.compile(r"[0-9]{4,16}")


def parse_pin(code: str, field: str = "code") -> str:
    """A PIN is 4 to 16 ASCII digits (not any Unicode digit)."""
    if not _PIN.fullmatch(code):
        raise ParameterError.field(field, "PIN must be 4 to 16 digits")
    return code


class PinFactor:
    """A PIN: one argon2id hash, a :class:`Credential` of kind "pin"."""

    name = PIN_KIND
    auth_type = PIN
    step = Step.PIN
    slow = True

    def __init__(self, hasher: PasswordHasher) -> None:
        self._hasher = hasher

    def accepts(self, code: str) -> bool:
        return True  # a malformed PIN is still checked (and fails) in constant time

    def enrolled(self, tx: Transaction, user: User) -> bool:
        return PIN_KIND in user.enrolled

    def begin(self, tx: Transaction, user: User, now: float) -> None:
        return None  # a PIN is chosen by a person: see ``set``

    def load(self, tx: Transaction, user: User) -> str | None:
        found = tx.credentials.of_user(user.id, PIN_KIND)
        return found[-1].secret.decode("ascii") if found else None

    def verify(self, credential: str, user: User, code: str, now: float) -> Match | None:
        # A malformed PIN still costs one argon2 verify, so timing says nothing.
        ok = self._hasher.verify(credential, code)
        return Match(self.name) if ok and _PIN.fullmatch(code) else None

    def redeem(self, tx: Transaction, user: User, match: Match, now: float) -> bool:
        # A PIN is reusable by nature; single use comes from consuming the session.
        return True

    def remove(self, tx: Transaction, user: User) -> None:
        tx.credentials.delete(user.id, PIN_KIND)
        user.pin_forced = False
        user.enrolled = user.enrolled - {PIN_KIND}

    def hash(self, pin: str) -> str:
        """The stored form of a new PIN (4 to 16 digits, else 400): slow, so
        done before the transaction that :meth:`set` writes it in."""
        return self._hasher.hash(parse_pin(pin))

    def set(self, tx: Transaction, user: User, hashed: str, now: float) -> None:
        """Make ``hashed`` (from :meth:`hash`) the user's one PIN."""
        tx.credentials.delete(user.id, PIN_KIND)
        tx.credentials.add(
            Credential(str(uuid.uuid4()), user.id, PIN_KIND, hashed.encode("ascii"), None, now)
        )
        user.enrolled = user.enrolled | {PIN_KIND}
