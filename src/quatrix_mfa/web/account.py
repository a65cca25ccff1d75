"""The signed-in side: the account overview, changing the password, and
signing out. A page that needs a full session sends anyone else to
``/login?next=<this page>``; the factor and session pages are in
``account_2fa``, ``account_pin`` and ``account_sessions``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from quatrix_mfa.core import passwords, policy, profile, sessions
from quatrix_mfa.core.errors import (
    NotAuthenticated,
    ParameterError,
    TooManyAttempts,
    WeakPassword,
)
from quatrix_mfa.web.answers import CURRENT_PASSWORD, fields, guard, refusal, to_login
from quatrix_mfa.web.i18n import N_
from quatrix_mfa.web.page import Browser, BrowserDep
from quatrix_mfa.web.passwords import weak_password

router = APIRouter(include_in_schema=False)

# What a page says after a change (``?notice=``); anything else says nothing.
# Marked here, translated where shown (the templates' ``notice_of``).
NOTICES = {
    "password-changed": N_("Your password is changed. Your other sessions were signed out."),
    "2fa-on": N_("2FA is on. Your other sessions were signed out."),
    "2fa-off": N_("2FA is off."),
    "pin-set": N_("Your PIN is set. Your other sessions were signed out."),
    "pin-off": N_("Your PIN is off."),
    "session-closed": N_("That session is signed out."),
    "others-closed": N_("Every other session is signed out."),
}
PASSWORD_PATH = "/account/password"  # noqa: S105 - a path
PASSWORD_FIELDS = (CURRENT_PASSWORD, "new_password", "confirm_password")


@router.get("/account")
def account_page(page: BrowserDep, notice: str = "") -> Response:
    if (answer := guard(page)) is not None:
        return answer
    caller = page.ctx.signed_in
    user, account = caller.user, caller.account
    totp_on = policy.totp_chosen(user)
    left = profile.recovery_codes_left(page.core, page.ctx) if user.twofa_active else None
    return page.render(
        "account.html",
        notice=NOTICES.get(notice, ""),
        name=user.name,
        email=user.email,
        account_name=account.name,
        totp_on=totp_on,
        totp_required=policy.needs_totp(account, user),
        totp_forced=policy.totp_forced(account, user),
        codes_left=left,
        pin_on=user.pin_active,
        pin_forced=user.pin_forced,
    )


def _password_form(page: Browser, status: int = 200, **values: Any) -> Response:
    """The form, with core's password rules said up front."""
    values.setdefault("errors", {})
    return page.render(
        "account_password.html",
        status,
        min_length=passwords.MIN_LENGTH,
        max_length=passwords.MAX_LENGTH,
        **values,
    )


@router.get(PASSWORD_PATH)
def password_page(page: BrowserDep) -> Response:
    if (answer := guard(page)) is not None:
        return answer
    return _password_form(page)


@router.post(PASSWORD_PATH)
def password_change(page: BrowserDep) -> Response:
    """A new password: every other session ends, and this browser carries on
    in a fresh session that core opens in place of its own."""
    if (answer := guard(page, back=PASSWORD_PATH)) is not None:
        return answer
    given, errors = fields(page, *PASSWORD_FIELDS)
    for name in PASSWORD_FIELDS:
        if not given[name] and name not in errors:
            errors[name] = page.gettext("Required.")
    if not errors and given["new_password"] != given["confirm_password"]:
        errors["confirm_password"] = page.gettext("The two new passwords differ.")
    if errors:
        return _password_form(page, 400, errors=errors)
    try:
        done = profile.set_password(
            page.core, page.ctx, given[CURRENT_PASSWORD], given["new_password"], rotate=True
        )
    except WeakPassword as weak:
        return _password_form(page, 400, errors={"new_password": weak_password(page, weak)})
    except TooManyAttempts as error:
        return _password_form(page, 429, errors={CURRENT_PASSWORD: refusal(page, error)})
    except ParameterError as error:
        wrong_current = "password" in (error.details or {})
        field = CURRENT_PASSWORD if wrong_current else "new_password"
        text = (
            page.gettext("That is not your current password.")
            if wrong_current
            else refusal(page, error)
        )
        return _password_form(page, 400, errors={field: text})
    except NotAuthenticated:  # the session or the credentials changed meanwhile
        page.signed_out()
        return to_login(page)
    assert done.token is not None
    page.carry(done.token)
    return page.redirect("/account", notice="password-changed")


@router.get("/logout")
def logout_page(page: BrowserDep) -> Response:
    """Signing out changes state, so it is a form (a link could be forged)."""
    if page.caller is None:
        return page.redirect("/login")
    return page.render("logout.html")


@router.post("/logout")
def logout(page: BrowserDep) -> Response:
    if page.caller is None:
        return page.redirect("/login")
    if not page.csrf_valid():
        return page.render("forbidden.html", 403)
    sessions.logout(page.core, page.caller)
    page.signed_out()
    return page.redirect("/login", notice="signed-out")
