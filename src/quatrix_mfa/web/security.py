"""The browser's side of security: the session cookie, CSRF tokens, the
Origin check, safe ``next`` targets and the headers every page carries.

Why not the API's header token: a browser cannot keep a secret header, so the
session id rides in an HttpOnly cookie (script cannot read it). A cookie is
sent by the browser on any request, including one a foreign page makes it
send, so every state-changing form also carries a token only our own page
can know (:func:`csrf_token`), and its Origin must be ours.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from quatrix_mfa.core.context import Core
from quatrix_mfa.core.text import has_control

CSRF_FIELD = "csrf_token"
NEXT_FIELD = "next"
DEFAULT_NEXT = "/account"

# No inline script or style anywhere: the stylesheet is a file of ours, the QR
# code inline SVG markup (presentation attributes, not style).
CSP = (
    "default-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    # A password-set link is in the URL: it must not leak through Referer.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# Pages that show a secret (QR, key, recovery codes) or a form; nothing of
# them may stay in a cache or come back with the Back button.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass(frozen=True)
class CookiePolicy:
    """How the browser carries our cookies. With an https public URL they are
    ``Secure`` and named ``__Host-...`` (the browser then refuses them from a
    subdomain or over http, and for any path but ``/``)."""

    secure: bool

    @classmethod
    def for_public_url(cls, public_url: str) -> CookiePolicy:
        return cls(secure=urlsplit(public_url).scheme == "https")

    @property
    def prefix(self) -> str:
        return "__Host-" if self.secure else ""

    @property
    def session(self) -> str:
        """The cookie holding the session id (pending or full)."""
        return self.prefix + "qmfa_session"

    @property
    def presession(self) -> str:
        """A random value that ties the CSRF token of the forms shown before
        any session (sign-in, set or forget a password) to this browser."""
        return self.prefix + "qmfa_pre"

    @property
    def device(self) -> str:
        """The cookie holding a trusted device's token (core/devices.py)."""
        return self.prefix + "qmfa_device"

    def set_lasting(self, response: Response, name: str, value: str, max_age: int) -> None:
        """A cookie that outlives the browser session: a trusted device's
        token must survive a restart, for the days the account allows."""
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def set(self, response: Response, name: str, value: str) -> None:
        # No Max-Age: the cookie ends with the browser; the server's session
        # expiry (idle and absolute) is what counts, whatever the cookie says.
        response.set_cookie(
            name, value, path="/", secure=self.secure, httponly=True, samesite="lax"
        )

    def clear(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", secure=self.secure, httponly=True, samesite="lax")


def new_presession() -> str:
    return secrets.token_urlsafe(32)


def csrf_token(core: Core, binding: str) -> str:
    """The token a form must send back: a keyed hash of what ties it to this
    browser (the session id, or the pre-session cookie). A foreign page can
    read neither, so it cannot compute the token."""
    return core.tokens.hash("csrf", binding)


def csrf_ok(core: Core, binding: str | None, sent: str | None) -> bool:
    if not binding or not sent:
        return False
    # As bytes: compare_digest refuses a str that is not ASCII (a forged token).
    expected = csrf_token(core, binding).encode()
    return hmac.compare_digest(expected, sent.encode("utf-8", "surrogatepass"))


def same_origin(request: Request) -> bool:
    """A form post must come from our own pages.

    ``Sec-Fetch-Site`` (sent by every current browser) must say same-origin;
    an ``Origin`` must be ours. ``Origin: null`` is what a browser sends for
    our own forms under ``Referrer-Policy: no-referrer``, so it is let through
    here and the CSRF token decides. A client sending neither header is not a
    browser that a foreign page could drive.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in {"same-origin", "none"}:
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    own = f"{request.url.scheme}://{request.url.netloc}"
    return origin.lower() == own.lower()


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site, never another site
    (no open redirect). ``//evil``, ``/\\evil``, ``https://evil`` and
    anything with a control character fall back to the account page."""
    if not target or len(target) > 2000 or has_control(target):
        return DEFAULT_NEXT
    if not target.startswith("/") or target.startswith(("//", "/\\")) or "\\" in target:
        return DEFAULT_NEXT
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    return target
