"""The TOTP parameters of new enrollments on the admin settings page (issue 13):
algorithm, digits and period. Core checks the values (core/site.py); a value
that is none of the choices (a tampered form) is shown at its field, and
nothing changes."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from quatrix_mfa.core import site
from quatrix_mfa.core.errors import QuatrixError
from quatrix_mfa.web.admin_common import problems, refused_post
from quatrix_mfa.web.admin_settings import _settings_page
from quatrix_mfa.web.page import BrowserDep

router = APIRouter(include_in_schema=False)


def _number(text: str) -> int | str:
    # A choice the form offers is a number; anything else goes to core as
    # typed, which refuses it by name.
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 3 else text


@router.post("/admin/settings/totp")
def totp_parameters(page: BrowserDep) -> Response:
    """Save the algorithm, digits and period new TOTP keys get."""
    stop = refused_post(page)
    if stop is not None:
        return stop
    values = page.form.values
    chosen = {
        "totp_algorithm": values.get("totp_algorithm", ""),
        "totp_digits": _number(values.get("totp_digits", "")),
        "totp_period": _number(values.get("totp_period", "")),
    }
    try:
        site.set_settings(page.core, page.ctx, {}, None, None, totp=chosen)
    except QuatrixError as error:
        return _settings_page(page, 400, errors=problems(page, error))
    return page.redirect("/admin/settings", notice="saved")
