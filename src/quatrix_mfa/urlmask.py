"""Passwords in URLs kept out of error lines and logs (issue 16, attack F4).

One rule for every URL we print (database, SMTP): everything between the
``//`` and the *last* ``@`` of a URL is the user and password (RFC 3986
§3.2.1: the host follows the last ``@``; a password with ``/``, ``?``, ``#``
or ``@`` in it breaks ``urlsplit`` but not this rule), and the password is
masked whole; so is the value of any ``password=`` parameter (libpq reads the
password from the query too).
"""

from __future__ import annotations

import re

# A URL within a line: scheme, "//", then everything up to whitespace or the
# quote that closes a repr().
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^\s'\"]*)")
_PASSWORD_PARAMETER = re.compile(r"(?i)(\bpassword=)[^&\s'\"]*")
MASK = "***"


def _mask_one(match: re.Match[str]) -> str:
    scheme, rest = match.group(1), match.group(2)
    userinfo, at, host = rest.rpartition("@")
    if at:
        # The user name helps tell which credentials failed; it ends at the
        # first ":" (RFC 3986 §3.2.1), and the rest up to the last "@" is secret.
        user, colon, _ = userinfo.partition(":")
        rest = f"{user}{colon}{MASK}@{host}" if colon else f"{MASK}@{host}"
    return scheme + rest


def mask_url(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` URL
    in it, and of every ``password=`` parameter, replaced by ``***``."""
    return _PASSWORD_PARAMETER.sub(rf"\g<1>{MASK}", _URL.sub(_mask_one, text))


def userinfo(raw: str) -> str:
    """What lies between the ``//`` and the last ``@`` of URL ``raw`` ('' if none)."""
    _, sep, rest = raw.partition("://")
    return rest.rpartition("@")[0] if sep else ""


class UserinfoError(ValueError):
    """The user or password needs percent-encoding (the message never quotes it)."""


def check_userinfo(raw: str) -> None:
    """ValueError (never echoing the password) when the user or password of
    ``raw`` holds a character that ends it early for a URL parser: urlsplit
    would read part of the password as the host or port, and say so."""
    info = userinfo(raw)
    bad = sorted({c for c in info if c in "/?#@"})
    if bad:
        encoded = ", ".join(f"{c} as %{ord(c):02X}" for c in bad)
        raise UserinfoError(f"percent-encode the user and password ({encoded})")


def leaks(message: str, raw: str) -> bool:
    """Whether ``message`` repeats a piece (3 characters or more) of the password in ``raw``."""
    password = userinfo(raw).partition(":")[2]
    return any(len(p) >= 3 and p in message for p in re.split(r"[/?#@:]", password))
