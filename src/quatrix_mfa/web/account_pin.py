"""``/account/pin``: set, change or remove the caller's PIN (4 to 16 digits,
said up front). Changing or removing it needs a recent sign-in or the
current password (core's rule, ``core/reauth.py``); removing a PIN an
administrator requires is refused, and the page says so."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from quatrix_mfa.core import policy, profile
from quatrix_mfa.core.errors import (
    NotAuthenticated,
    ParameterError,
    SignedInByDevice,
    TooManyAttempts,
)
from quatrix_mfa.core.model import PIN
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

router = APIRouter(include_in_schema=False)

PATH = "/account/pin"
REMOVE_PATH = PATH + "/remove"
PIN_RULE = N_("4 to 16 digits.")  # translated where shown


def _page(page: Browser, status: int = 200, *, form: str = "", **values: Any) -> Response:
    caller = page.ctx.signed_in
    user, account = caller.user, caller.account
    values.setdefault("notice", "")
    values.setdefault("errors", {})
    return page.render(
        "account_pin.html",
        status,
        on=user.pin_active,
        # A session opened through a trusted browser may change nothing here.
        by_device=by_device_text(page),
        forced_reason=FORCED_BY.get(policy.forced_by(account, user, PIN) or "", ""),
        reauth=needs_password(page),
        form=form,
        pin_rule=PIN_RULE,
        **values,
    )


@router.get(PATH)
def pin_page(page: BrowserDep, notice: str = "") -> Response:
    if (answer := guard(page)) is not None:
        return answer
    return _page(page, notice=NOTICES.get(notice, ""))


@router.post(PATH)
def pin_set(page: BrowserDep) -> Response:
    """A new PIN: every other session ends, this browser carries on in the
    fresh session core opens. The PIN typed is never shown again."""
    if (answer := guard(page, back=PATH)) is not None:
        return answer
    given, errors = fields(page, "pin", CURRENT_PASSWORD)
    if not given["pin"] and "pin" not in errors:
        errors["pin"] = page.gettext("Enter a PIN: 4 to 16 digits.")
    if page.ctx.signed_in.user.pin_active and not errors:  # changing: a sensitive change
        errors = reauthenticated(page, given[CURRENT_PASSWORD])
    if errors:
        return _page(page, 400, form="set", errors=errors)
    try:
        result = profile.set_factor(page.core, page.ctx, PIN, given["pin"])
    except SignedInByDevice:
        return _page(page, 403)
    except TooManyAttempts as error:
        return _page(page, 429, form="set", errors={"pin": refusal(page, error)})
    except ParameterError:
        return _page(
            page, 400, form="set", errors={"pin": page.gettext("A PIN is 4 to 16 digits.")}
        )
    except NotAuthenticated:
        page.signed_out()
        return to_login(page)
    page.carry(result.token)
    return page.redirect(PATH, notice="pin-set")


@router.post(REMOVE_PATH)
def pin_remove(page: BrowserDep) -> Response:
    """Remove the PIN, unless an administrator requires it: the page says so."""
    return remove_own_factor(page, PIN, _page, back=PATH, notice="pin-off")
