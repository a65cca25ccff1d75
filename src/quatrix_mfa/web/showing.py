"""Showing a secret once, for the sign-in enrollment and the account's 2FA
page alike: a new TOTP key (a QR code as inline SVG, the key in groups of
four for typing, the ``otpauth://`` link), and new recovery codes (with a
``.txt`` download that needs no script and no request)."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import quote

import segno

from quatrix_mfa.core.factors.totp import DEFAULT
from quatrix_mfa.core.profile import Enrollment
from quatrix_mfa.web.page import Browser

GROUP = 4  # characters of the key per group, for typing it into an app


def qr_svg(uri: str, title: str = "QR code with your new 2FA key") -> str:
    """The otpauth URI as inline SVG: no image request, no data: URI for the
    CSP to allow, and it scales sharply on any screen. ``title`` is what a
    screen reader says of it."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(
        out,
        kind="svg",
        scale=5,
        border=2,
        xmldecl=False,
        svgns=True,
        title=title,
        svgclass="qr",
    )
    return out.getvalue().decode()


def enrollment_values(page: Browser, enrollment: Enrollment) -> dict[str, Any]:
    """What the key's template (``totp_key.html``) shows, in the page's language."""
    secret = enrollment.secret
    return {
        "key_groups": [secret[i : i + GROUP] for i in range(0, len(secret), GROUP)],
        "uri": enrollment.uri,
        "qr_svg": qr_svg(enrollment.uri, page.gettext("QR code with your new 2FA key")),
        # Typed in by hand, a key of other than the default parameters needs them too.
        "totp_params": None if enrollment.params == DEFAULT else enrollment.params,
    }


RECOVERY_FILE = "quatrix-mfa-recovery-codes.txt"


def recovery_values(page: Browser, codes: list[str], next_path: str, email: str) -> dict[str, Any]:
    """What ``recovery_codes.html`` shows: the codes, and the same as a text
    file in a ``data:`` link (a ``download`` link: the browser saves it, no
    script runs and nothing is sent to the server again)."""
    _ = page.gettext
    heading = _("quatrix-mfa recovery codes for %(email)s") % {"email": email}
    text = "\n".join([heading, _("Each code works once."), "", *codes, ""])
    return {
        "codes": codes,
        "next": next_path,
        "download_href": "data:text/plain;charset=utf-8," + quote(text),
        "download_name": RECOVERY_FILE,
    }
