"""Encodings the API asks clients for: base64 passwords, HTTP Basic credentials."""

from __future__ import annotations

import base64


def b64(text: str) -> str:
    """``text`` as /profile/set-password wants a password: base64 of its UTF-8."""
    return base64.b64encode(text.encode()).decode()


def basic(email: str, password: str) -> str:
    """An ``Authorization: Basic`` value for a password login."""
    return "Basic " + base64.b64encode(f"{email}:{password}".encode()).decode()
