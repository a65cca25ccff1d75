"""Password rules (NIST SP 800-63B §5.1.1.2: length first, block the obvious)."""

from __future__ import annotations

import base64
import binascii

from quatrix_mfa.core.errors import ParameterError, WeakPassword

MIN_LENGTH = 8
MAX_LENGTH = 256
# The handful every breach list starts with; a full blocklist is a deployment choice.
_COMMON = frozenset(
    {
        "password", "password1", "password123", "12345678", "123456789", "1234567890",
        "qwerty123", "qwertyuiop", "iloveyou", "11111111", "00000000", "abc12345",
        "letmein1", "welcome1", "admin123", "passw0rd", "sunshine", "football",
        "baseball", "trustno1", "changeme", "quatrix1", "superman", "qwerty12",
    }
)  # fmt: skip


def check_strength(password: str, email: str | None = None) -> None:
    """Raise WeakPassword (code 32) unless ``password`` is acceptable."""
    if len(password) > MAX_LENGTH:
        # decisions.md: 8 to 256 characters, else 400 code 32 (like too short).
        raise WeakPassword(f"Password too long: at most {MAX_LENGTH} characters")
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"Password too weak: at least {MIN_LENGTH} characters")
    lowered = password.lower()
    if lowered in _COMMON or len(set(password)) < 3:
        raise WeakPassword("Password too weak: too common")
    if email and lowered in {email.lower(), email.lower().split("@")[0]}:
        raise WeakPassword("Password too weak: same as the email")


def decode_base64_password(value: str, field: str) -> str:
    """The spec sends profile passwords base64-encoded; 400 if they are not."""
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
        return raw.decode("utf-8")
    except (UnicodeError, binascii.Error, ValueError):
        raise ParameterError.field(field, "must be base64 of a UTF-8 string") from None
