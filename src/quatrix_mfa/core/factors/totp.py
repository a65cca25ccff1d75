"""TOTP (RFC 6238) over HOTP (RFC 4226): SHA-1, 6 digits, 30 s, ±1 step.

The HOTP value itself comes from pyotp; this module adds what an
authentication service needs around it: the drift window (RFC 6238 §5.2),
constant-time comparison, and the replay guard (a code's time step must be
later than the last accepted one, enforced by one atomic UPDATE).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pyotp

from quatrix_mfa.core.crypto import SecretBox
from quatrix_mfa.core.factors import Match
from quatrix_mfa.core.model import TOTP_KIND, TWO_FA, Credential, Step, TotpEnrollment, User
from quatrix_mfa.core.ports import Transaction

PERIOD = 30
DIGITS = 6
DRIFT_STEPS = 1
SECRET_BYTES = 20  # 160 bits, RFC 4226 §4 R6 recommends at least this
ENROLLMENT_SECONDS = 600
_CODE = re.compile(r"[0-9]{6}")


def new_secret() -> bytes:
    return os.urandom(SECRET_BYTES)


def base32(secret: bytes) -> str:
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def hotp(
    secret: bytes,
    counter: int,
    digits: int = DIGITS,
    digest: Callable[..., Any] = hashlib.sha1,
) -> str:
    """RFC 4226 §5.3: HOTP(K, C) truncated to ``digits`` decimal digits."""
    return _generator(secret, digits, digest).at(counter)


def _generator(
    secret: bytes, digits: int = DIGITS, digest: Callable[..., Any] = hashlib.sha1
) -> pyotp.HOTP:
    return pyotp.HOTP(base32(secret), digits=digits, digest=digest)


def time_step(now: float, period: int = PERIOD) -> int:
    """RFC 6238 §4.2: T = floor((now - T0) / X) with T0 = 0."""
    return int(now // period)


def code_at(
    secret: bytes, now: float, digits: int = DIGITS, digest: Callable[..., Any] = hashlib.sha1
) -> str:
    """RFC 6238 §4.2: TOTP = HOTP(K, T)."""
    return hotp(secret, time_step(now), digits, digest)


def matching_step(secret: bytes, code: str, now: float, last_step: int | None) -> int | None:
    """The time step ``code`` belongs to, within ±1 step and after ``last_step``.

    Every candidate is computed and compared in constant time, so the time
    taken does not tell which step matched.
    """
    if not _CODE.fullmatch(code):
        return None
    current = time_step(now)
    generator = _generator(secret)  # one for the window: it is on every code check
    found: int | None = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        fresh = last_step is None or step > last_step
        if hmac.compare_digest(generator.at(step), code) and fresh and found is None:
            found = step
    return found


def provisioning_uri(secret: bytes, account_label: str, issuer: str) -> str:
    """The ``otpauth://`` URI authenticator apps scan (Key Uri Format)."""
    label = quote(f"{issuer}:{account_label}", safe="@:")
    return (
        f"otpauth://totp/{label}?secret={base32(secret)}&issuer={quote(issuer)}"
        f"&algorithm=SHA1&digits={DIGITS}&period={PERIOD}"
    )


class TotpFactor:
    """The active TOTP seed of a user (a :class:`Credential` of kind "totp")."""

    name = TOTP_KIND
    auth_type = TWO_FA
    step = Step.TOTP
    slow = False

    def __init__(self, box: SecretBox) -> None:
        self._box = box

    def accepts(self, code: str) -> bool:
        return bool(_CODE.fullmatch(code))

    def enrolled(self, tx: Transaction, user: User) -> bool:
        return TOTP_KIND in user.enrolled

    def load(self, tx: Transaction, user: User) -> Credential | None:
        found = tx.credentials.of_user(user.id, TOTP_KIND)
        return found[-1] if found else None

    def verify(self, credential: Credential, user: User, code: str, now: float) -> Match | None:
        assert credential.key_id is not None  # a seed is always sealed
        secret = self._box.open(credential.secret, credential.key_id, user.id)
        step = matching_step(secret, code, now, credential.last_step)
        return None if step is None else Match(self.name, step, credential.id)

    def redeem(self, tx: Transaction, user: User, match: Match, now: float) -> bool:
        # RFC 6238 §5.2: a code is accepted once. The conditional update is the
        # check-and-set; it also misses if the seed was replaced since verify.
        if match.credential is None or not isinstance(match.token, int):
            return False
        return tx.credentials.advance_step(user.id, match.credential, match.token)

    def remove(self, tx: Transaction, user: User) -> None:
        tx.credentials.delete(user.id, TOTP_KIND)
        tx.credentials.delete_enrollment(user.id)
        tx.credentials.delete_recovery_codes(user.id)
        user.twofa_active = False
        user.enrolled = user.enrolled - {TOTP_KIND}

    # Enrollment: a pending seed that becomes active once a code proves it.
    def begin(self, tx: Transaction, user: User, now: float) -> bytes:
        """A new pending seed (``ENROLLMENT_SECONDS``); the active one stays."""
        secret = new_secret()
        ciphertext, key_id = self._box.seal(secret, user.id)
        tx.credentials.put_enrollment(
            TotpEnrollment(user.id, ciphertext, key_id, now + ENROLLMENT_SECONDS)
        )
        return secret

    def pending_secret(self, enrollment: TotpEnrollment, user: User) -> bytes:
        """The seed of a pending enrollment, to show it again."""
        return self._box.open(enrollment.ciphertext, enrollment.key_id, user.id)

    def enrollment_step(
        self, enrollment: TotpEnrollment, user: User, code: str, now: float
    ) -> int | None:
        secret = self._box.open(enrollment.ciphertext, enrollment.key_id, user.id)
        return matching_step(secret, code, now, None)

    def same_seed(self, first: TotpEnrollment, second: TotpEnrollment, user: User) -> bool:
        """Whether two reads of a pending seed are one seed: ``rotate-key`` may have
        re-encrypted it (a new ciphertext under a new key) between them."""
        if first.ciphertext == second.ciphertext:
            return True
        return hmac.compare_digest(
            self._box.open(first.ciphertext, first.key_id, user.id),
            self._box.open(second.ciphertext, second.key_id, user.id),
        )

    def activate(
        self, tx: Transaction, user: User, enrollment: TotpEnrollment, step: int, now: float
    ) -> None:
        """Make the enrolled seed the user's one active seed; the proving code's
        step is already spent."""
        tx.credentials.delete(user.id, TOTP_KIND)
        tx.credentials.add(
            Credential(
                id=str(uuid.uuid4()),
                user_id=user.id,
                kind=TOTP_KIND,
                secret=enrollment.ciphertext,
                key_id=enrollment.key_id,
                created=now,
                last_step=step,
            )
        )
        tx.credentials.delete_enrollment(user.id)
        user.twofa_active = True
        user.enrolled = user.enrolled | {TOTP_KIND}
