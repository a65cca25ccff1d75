"""Password rules (NIST SP 800-63B §5.1.1.2: length first, block the obvious)."""

from __future__ import annotations

import base64
import binascii
import functools

from quatrix_mfa.core.errors import ParameterError, WeakPassword
from quatrix_mfa.core.text import has_control

# OWASP ASVS 4.0.3 2.1.1 asks for 12 (NIST SP 800-63B allows 8); 2.1.2 for 64 and more.
MIN_LENGTH = 12
MAX_LENGTH = 256
# Words of this service that people reach for first (ASVS 2.1.7 context words).
_CONTEXT_WORDS = ("quatrix", "quatrixmfa")


@functools.cache
def _breached() -> frozenset[str]:
    """The 30,000 most common passwords of public breach corpora (ASVS 4.0.3 2.1.7).

    zxcvbn ships them; they are loaded on first use, not at import time.
    """
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"])


def check_strength(password: str, email: str | None = None) -> None:
    """Raise WeakPassword (code 32) unless ``password`` is acceptable."""
    if len(password) > MAX_LENGTH:
        # decisions.md: 12 to 256 characters, else 400 code 32 (like too short).
        raise WeakPassword(f"Password too long: at most {MAX_LENGTH} characters", "too_long")
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"Password too weak: at least {MIN_LENGTH} characters", "too_short")
    lowered = password.lower()
    squeezed = "".join(lowered.split())
    if lowered in _breached() or squeezed in _breached() or len(set(password)) < 3:
        raise WeakPassword("Password too weak: too common", "common")
    letters = "".join(c for c in lowered if c.isalpha())
    if letters in _CONTEXT_WORDS:  # "Quatrix2024!"
        raise WeakPassword("Password too weak: the service's own name", "service_name")
    if email and lowered in {email.lower(), email.lower().split("@")[0]}:
        raise WeakPassword("Password too weak: same as the email", "same_as_email")


def decode_base64_password(value: str, field: str, *, new: bool = False) -> str:
    """The spec sends profile passwords base64-encoded; 400 if they are not.

    A ``new`` password must also be free of control characters, like one sent
    in plain JSON to ``/reset-password/reset`` (a current one is only compared).
    """
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
        decoded = raw.decode("utf-8")
    except (UnicodeError, binascii.Error, ValueError):
        raise ParameterError.field(field, "must be base64 of a UTF-8 string") from None
    if new and has_control(decoded):
        raise ParameterError.field(field, "contains a control character")
    return decoded
