"""``/account/2fa``: the caller's TOTP and recovery codes. Turn 2FA on or
replace its key (QR, key, link, then a code), see how many recovery codes
are left and get a new set (for a current code), turn 2FA off. Replacing,
removing and new codes need a recent sign-in or the current password
(core's rule, ``core/reauth.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from quatrix_mfa.core import policy, profile
from quatrix_mfa.core.errors import (
    FactorNotActive,
    NotAuthenticated,
    ParameterError,
    PendingSession,
    QuatrixError,
    SignedInByDevice,
    TooManyAttempts,
    WrongCode,
)
from quatrix_mfa.core.model import TWO_FA
from quatrix_mfa.web.account import NOTICES
from quatrix_mfa.web.answers import (
    CURRENT_PASSWORD,
    FORCED_BY,
    by_device_text,
    fields,
    guard,
    needs_password,
    reauthenticated,
    refusal,
    remove_own_factor,
    to_login,
)
from quatrix_mfa.web.i18n import N_
from quatrix_mfa.web.page import Browser, BrowserDep
from quatrix_mfa.web.showing import enrollment_values, recovery_values

router = APIRouter(include_in_schema=False)

PATH = "/account/2fa"
CODES_PATH = PATH + "/recovery-codes"
REMOVE_PATH = PATH + "/remove"
# Which form an error belongs to, so it shows next to the field it is about.
FORMS = ("enroll", "codes", "remove")


def _page(
    page: Browser, status: int = 200, *, form: str = "", replace: bool = False, **values: Any
) -> Response:
    """The 2FA page; ``form`` names the form that ``errors`` and the kept
    ``code`` belong to. The key (QR) is shown when 2FA is off, or on to
    replace it; showing it starts (or shows again) a pending key, which
    leaves the active one as it is."""
    caller = page.ctx.signed_in
    user, account = caller.user, caller.account
    on = user.twofa_active
    # A session opened through a trusted browser may change nothing here:
    # the page says so instead of its forms (and starts no key).
    by_device = by_device_text(page)
    show_key = not by_device and (not on or replace or form == "enroll")
    forced_by = policy.forced_by(account, user, TWO_FA)
    values.setdefault("notice", "")
    return page.render(
        "account_2fa.html",
        status,
        secret=show_key,
        on=on,
        required=policy.needs_totp(account, user),
        forced_reason=FORCED_BY.get(forced_by or "", ""),
        codes_left=profile.recovery_codes_left(page.core, page.ctx) if on else 0,
        show_key=show_key,
        by_device=by_device,
        reauth=needs_password(page),
        form=form,
        code=values.pop("code", ""),
        errors=values.pop("errors", {}),
        **(
            enrollment_values(page, profile.totp_enrollment(page.core, page.ctx))
            if show_key
            else {}
        ),
        **values,
    )


@router.get(PATH)
def twofa_page(page: BrowserDep, replace: str = "", notice: str = "") -> Response:
    if (answer := guard(page)) is not None:
        return answer
    return _page(page, replace=bool(replace), notice=NOTICES.get(notice, ""))


def _codes_shown(page: Browser, codes: list[str], heading: str) -> Response:
    """The new recovery codes, once; ``heading`` is translated here."""
    email = page.ctx.signed_in.user.email
    return page.render(
        "recovery_codes.html",
        secret=True,
        heading=page.gettext(heading),
        **recovery_values(page, codes, PATH, email),
    )


@router.post(PATH)
def twofa_enroll(page: BrowserDep) -> Response:
    """Confirm the shown key with a code: 2FA is on (or its key replaced),
    every other session ends, this browser carries on in the fresh one core
    opens, and the new recovery codes are shown, once."""
    if (answer := guard(page, back=PATH)) is not None:
        return answer
    given, errors = fields(page, "code", CURRENT_PASSWORD)
    code = given["code"].strip()
    if not code and "code" not in errors:
        errors["code"] = page.gettext("Enter the code your app shows.")
    if page.ctx.signed_in.user.twofa_active and not errors:  # replacing: a sensitive change
        errors = reauthenticated(page, given[CURRENT_PASSWORD])
    if errors:
        return _page(page, 400, form="enroll", code=code, errors=errors)
    try:
        result = profile.set_factor(page.core, page.ctx, TWO_FA, code)
    except SignedInByDevice:
        return _page(page, 403)
    except (WrongCode, TooManyAttempts) as error:
        status = 429 if isinstance(error, TooManyAttempts) else 401
        return _page(page, status, form="enroll", code=code, errors={"code": refusal(page, error)})
    except (NotAuthenticated, PendingSession):
        page.signed_out()
        return to_login(page)
    except QuatrixError as error:  # the pending key expired meanwhile: a new one is shown
        return _page(page, 400, form="enroll", errors={"code": refusal(page, error)})
    page.carry(result.token)
    return _codes_shown(
        page, result.recovery_codes or [], N_("2FA is on. Keep your recovery codes")
    )


@router.post(CODES_PATH)
def twofa_new_codes(page: BrowserDep) -> Response:
    """A new set of recovery codes for a current code; the old set dies."""
    if (answer := guard(page, back=PATH)) is not None:
        return answer
    given, errors = fields(page, "code", CURRENT_PASSWORD)
    code = given["code"].strip()
    if not code and "code" not in errors:
        errors["code"] = page.gettext("Enter the code your app shows.")
    if not errors:
        errors = reauthenticated(page, given[CURRENT_PASSWORD])
    if errors:
        return _page(page, 400, form="codes", code=code, errors=errors)
    try:
        codes = profile.regenerate_recovery_codes(page.core, page.ctx, code)
    except SignedInByDevice:
        return _page(page, 403)
    except (WrongCode, TooManyAttempts, FactorNotActive, ParameterError) as error:
        # ParameterError: a code of the other length (8 digits for a 6-digit key).
        status = 429 if isinstance(error, TooManyAttempts) else 400
        return _page(page, status, form="codes", code=code, errors={"code": refusal(page, error)})
    return _codes_shown(page, codes, N_("Your new recovery codes"))


@router.post(REMOVE_PATH)
def twofa_remove(page: BrowserDep) -> Response:
    """Turn 2FA off, unless it is forced: then the page says who forces it."""
    return remove_own_factor(page, TWO_FA, _page, back=PATH, notice="2fa-off")
