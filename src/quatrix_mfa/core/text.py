"""What text from a client may hold: one rule for every place that checks it."""

from __future__ import annotations


def is_control(char: str) -> bool:
    """C0 and C1 controls and DEL (Unicode category Cc)."""
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F


def has_control(text: str) -> bool:
    """True if ``text`` holds a control character (a NUL, an escape, a line break...)."""
    return any(is_control(char) for char in text)


def normalize_email(email: str) -> str:
    """The one spelling of an email that is stored, looked up and throttled:
    emails compare case-insensitively (DESIGN.md, "Identities")."""
    return email.strip().lower()
