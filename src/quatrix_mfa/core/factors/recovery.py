"""Recovery codes: ten single-use codes, 80 bits each, stored as keyed hashes."""

from __future__ import annotations

import re
import secrets

from quatrix_mfa.core.crypto import TokenHasher
from quatrix_mfa.core.factors import Match
from quatrix_mfa.core.model import TWO_FA, Step, User
from quatrix_mfa.core.ports import Transaction

COUNT = 10
# Crockford's base32: no I, L, O, U, so codes read aloud without confusion.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_GROUPS = 4
_GROUP_LEN = 4
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SHAPE = re.compile(f"[{ALPHABET}]{{{_GROUPS * _GROUP_LEN}}}")


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(_GROUPS * _GROUP_LEN))
    return "-".join(raw[i : i + _GROUP_LEN] for i in range(0, len(raw), _GROUP_LEN))


def normalize(code: str) -> str | None:
    """Upper-case, drop separators, fold confusable letters; None if not a code.

    ASCII only: ``str.upper`` turns some other letters into ASCII ones
    ("\u017f" into "S", "\u0131" into "I"), and no code is spelled that way.
    """
    if len(code) > 64 or not code.isascii():
        return None
    cleaned = code.upper().replace("-", "").replace(" ", "").translate(_CONFUSABLE)
    return cleaned if _SHAPE.fullmatch(cleaned) else None


def looks_like_recovery_code(code: str) -> bool:
    return normalize(code) is not None


class RecoveryCodes:
    """Ten single-use codes that stand in for a TOTP code (``auth_type`` 2FA)."""

    name = "recovery"
    auth_type = TWO_FA
    step = Step.TOTP
    slow = False

    def __init__(self, tokens: TokenHasher) -> None:
        self._tokens = tokens

    def accepts(self, code: str) -> bool:
        return looks_like_recovery_code(code)

    def enrolled(self, tx: Transaction, user: User) -> bool:
        return tx.credentials.recovery_codes_left(user.id) > 0

    def begin(self, tx: Transaction, user: User, now: float) -> list[str]:
        return self.issue(tx, user)

    def _hash(self, user: User, normalized: str) -> str:
        return self._tokens.hash("recovery", f"{user.id}:{normalized}")

    def load(self, tx: Transaction, user: User) -> int | None:
        left = tx.credentials.recovery_codes_left(user.id)
        return left or None

    def verify(self, credential: int, user: User, code: str, now: float) -> Match | None:
        normalized = normalize(code)
        return None if normalized is None else Match(self.name, self._hash(user, normalized))

    def redeem(self, tx: Transaction, user: User, match: Match, now: float) -> bool:
        if not isinstance(match.token, str):
            return False
        return tx.credentials.consume_recovery_code(user.id, match.token, now)

    def remove(self, tx: Transaction, user: User) -> None:
        tx.credentials.delete_recovery_codes(user.id)

    def issue(self, tx: Transaction, user: User) -> list[str]:
        """Replace the user's codes with ten new ones, returned once in clear."""
        codes = [new_code() for _ in range(COUNT)]
        tx.credentials.replace_recovery_codes(
            user.id, [self._hash(user, c.replace("-", "")) for c in codes]
        )
        return codes
