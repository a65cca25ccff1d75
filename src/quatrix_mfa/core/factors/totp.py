"""TOTP (RFC 6238) over HOTP (RFC 4226): SHA-1, SHA-256 or SHA-512, 6 or 8
digits, 30 or 60 s, ±1 step.

The HOTP value itself comes from pyotp; this module adds what an
authentication service needs around it: the drift window (RFC 6238 §5.2),
constant-time comparison, the replay guard (a code's time step must be
later than the last accepted one, enforced by one atomic UPDATE), each
secret's own parameters (:class:`Parameters`, captured when its enrollment
starts) and the diagnosis of a refused code (:mod:`.drift`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pyotp

from quatrix_mfa.core.crypto import SecretBox
from quatrix_mfa.core.errors import ParameterError
from quatrix_mfa.core.factors import Match
from quatrix_mfa.core.model import TOTP_KIND, TWO_FA, Credential, Step, TotpEnrollment, User
from quatrix_mfa.core.ports import Transaction

PERIOD = 30
DIGITS = 6
DRIFT_STEPS = 1
SECRET_BYTES = 20  # 160 bits, RFC 4226 §4 R6 recommends at least this
ENROLLMENT_SECONDS = 600
# RFC 6238 §1.2: HMAC-SHA-1, HMAC-SHA-256 or HMAC-SHA-512; the names are the
# Key Uri Format's ``algorithm`` values.
ALGORITHMS: dict[str, Callable[..., Any]] = {
    "SHA1": hashlib.sha1,
    "SHA256": hashlib.sha256,
    "SHA512": hashlib.sha512,
}
DIGIT_CHOICES = (6, 8)
PERIOD_CHOICES = (30, 60)
# Any code of the digits an authenticator app shows (6 or 8); whether it has
# the right length for one secret is :meth:`Parameters.well_formed`.
_CODE = re.compile(r"[0-9]{6}|[0-9]{8}")


@dataclass(frozen=True)
class Parameters:
    """The parameters one secret is used with (RFC 6238 §4, Key Uri Format):
    each secret keeps the ones it was enrolled with, whatever the site's
    settings become later. Stored NULL means the old defaults."""

    algorithm: str = "SHA1"
    digits: int = DIGITS
    period: int = PERIOD

    @classmethod
    def stored(cls, algorithm: str | None, digits: int | None, period: int | None) -> Parameters:
        """From the (nullable) columns of a credential or enrollment."""
        return cls(algorithm or "SHA1", digits or DIGITS, period or PERIOD)

    @property
    def digest(self) -> Callable[..., Any]:
        return ALGORITHMS[self.algorithm]

    def well_formed(self, code: str) -> bool:
        """Digits only, as many as this secret's codes have."""
        return len(code) == self.digits and code.isascii() and code.isdigit()


DEFAULT = Parameters()


def check_parameters(algorithm: str, digits: int, period: int) -> Parameters:
    """The site settings' choice, or ValueError naming the field that is not
    one of the supported values."""
    if algorithm not in ALGORITHMS:
        raise ValueError("totp_algorithm")
    if type(digits) is not int or digits not in DIGIT_CHOICES:
        raise ValueError("totp_digits")
    if type(period) is not int or period not in PERIOD_CHOICES:
        raise ValueError("totp_period")
    return Parameters(algorithm, digits, period)


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


class _KeyedHOTP(pyotp.HOTP):
    """pyotp's HOTP over a key kept as bytes. pyotp keeps the key in base32
    and decodes it again for every code: that was 60% of a code's time, and a
    refused code's diagnosis (:mod:`.drift`) computes 44 codes."""

    _key: bytes | None = None

    def __init__(self, key: bytes, digits: int, digest: Callable[..., Any]) -> None:
        super().__init__(base32(key), digits=digits, digest=digest)  # pyotp checks the key
        self._key = key

    def byte_secret(self) -> bytes:
        return self._key if self._key is not None else super().byte_secret()


def _generator(
    secret: bytes, digits: int = DIGITS, digest: Callable[..., Any] = hashlib.sha1
) -> pyotp.HOTP:
    return _KeyedHOTP(secret, digits, digest)


def time_step(now: float, period: int = PERIOD) -> int:
    """RFC 6238 §4.2: T = floor((now - T0) / X) with T0 = 0."""
    return int(now // period)


def code_at(
    secret: bytes,
    now: float,
    digits: int = DIGITS,
    digest: Callable[..., Any] = hashlib.sha1,
    period: int = PERIOD,
) -> str:
    """RFC 6238 §4.2: TOTP = HOTP(K, T)."""
    return hotp(secret, time_step(now, period), digits, digest)


def matching_steps(
    secret: bytes, code: str, now: float, params: Parameters, reach: int
) -> list[int]:
    """The time steps within ``reach`` steps of now whose code is ``code``.

    Every candidate is computed and compared in constant time (RFC 4226
    §7.2 asks for no timing leak), so the time taken does not tell which
    step matched. A code of the wrong shape matches nothing.
    """
    if not params.well_formed(code):
        return []
    current = time_step(now, params.period)
    generator = _generator(secret, params.digits, params.digest)
    found = []
    for step in range(current - reach, current + reach + 1):
        if hmac.compare_digest(generator.at(step), code):
            found.append(step)
    return found


def matching_step(
    secret: bytes,
    code: str,
    now: float,
    last_step: int | None,
    params: Parameters = DEFAULT,
    burned: Collection[int] = (),
) -> int | None:
    """The time step ``code`` belongs to, within ±1 step and after ``last_step``,
    and not one a refusal has burned (:mod:`.drift`)."""
    for step in matching_steps(secret, code, now, params, DRIFT_STEPS):
        if (last_step is None or step > last_step) and step not in burned:
            return step
    return None


def provisioning_uri(
    secret: bytes, account_label: str, issuer: str, params: Parameters = DEFAULT
) -> str:
    """The ``otpauth://`` URI authenticator apps scan (Key Uri Format): the
    ``algorithm``, ``digits`` and ``period`` parameters carry the secret's own."""
    label = quote(f"{issuer}:{account_label}", safe="@:")
    return (
        f"otpauth://totp/{label}?secret={base32(secret)}&issuer={quote(issuer)}"
        f"&algorithm={params.algorithm}&digits={params.digits}&period={params.period}"
    )


def check_length(params: Parameters, code: str) -> None:
    """Refuse (400, nothing counted) a code of the other length an app shows:
    8 digits for a 6-digit seed or 6 for an 8-digit one is a mistake to tell
    apart from a wrong code (issue 13). Anything else is just a wrong code."""
    if _CODE.fullmatch(code) and len(code) != params.digits:
        raise ParameterError.field("code", f"this key's codes have {params.digits} digits")


def parameters_of(record: Credential | TotpEnrollment) -> Parameters:
    """The parameters a stored credential or pending enrollment was made with."""
    return Parameters.stored(record.algorithm, record.digits, record.period)


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

    def secret_of(self, credential: Credential, user: User) -> bytes:
        assert credential.key_id is not None  # a seed is always sealed
        return self._box.open(credential.secret, credential.key_id, user.id)

    def verify(self, credential: Credential, user: User, code: str, now: float) -> Match | None:
        params = parameters_of(credential)
        check_length(params, code)
        secret = self.secret_of(credential, user)
        burned = credential.burned_steps or ()
        step = matching_step(secret, code, now, credential.last_step, params, burned)
        if step is None:
            return None
        return Match(self.name, step, credential.id, step - time_step(now, params.period))

    def redeem(self, tx: Transaction, user: User, match: Match, now: float) -> bool:
        # RFC 6238 §5.2: a code is accepted once. The conditional update is the
        # check-and-set; it also misses if the seed was replaced since verify.
        if match.credential is None or not isinstance(match.token, int):
            return False
        return tx.credentials.advance_step(user.id, match.credential, match.token, match.offset)

    def remove(self, tx: Transaction, user: User) -> None:
        tx.credentials.delete(user.id, TOTP_KIND)
        tx.credentials.delete_enrollment(user.id)
        tx.credentials.delete_recovery_codes(user.id)
        user.twofa_active = False
        user.enrolled = user.enrolled - {TOTP_KIND}

    # Enrollment: a pending seed that becomes active once a code proves it.
    def begin(self, tx: Transaction, user: User, now: float) -> bytes:
        """A new pending seed (``ENROLLMENT_SECONDS``); the active one stays."""
        return self.start(tx, user, now)[0]

    def start(self, tx: Transaction, user: User, now: float) -> tuple[bytes, Parameters]:
        """:meth:`begin`, with the parameters the seed gets: the account's
        settings now, kept with the seed whatever they become later."""
        account = tx.accounts.get(user.account_id)
        params = (
            DEFAULT
            if account is None
            else Parameters(account.totp_algorithm, account.totp_digits, account.totp_period)
        )
        secret = new_secret()
        ciphertext, key_id = self._box.seal(secret, user.id)
        tx.credentials.put_enrollment(
            TotpEnrollment(
                user.id,
                ciphertext,
                key_id,
                now + ENROLLMENT_SECONDS,
                params.algorithm,
                params.digits,
                params.period,
            )
        )
        return secret, params

    def pending_secret(self, enrollment: TotpEnrollment, user: User) -> bytes:
        """The seed of a pending enrollment, to show it again."""
        return self._box.open(enrollment.ciphertext, enrollment.key_id, user.id)

    def enrollment_step(
        self, enrollment: TotpEnrollment, user: User, code: str, now: float
    ) -> int | None:
        params = parameters_of(enrollment)
        check_length(params, code)
        secret = self._box.open(enrollment.ciphertext, enrollment.key_id, user.id)
        return matching_step(secret, code, now, None, params)

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
                algorithm=enrollment.algorithm,
                digits=enrollment.digits,
                period=enrollment.period,
                last_offset=step - time_step(now, parameters_of(enrollment).period),
            )
        )
        tx.credentials.delete_enrollment(user.id)
        user.twofa_active = True
        user.enrolled = user.enrolled | {TOTP_KIND}
