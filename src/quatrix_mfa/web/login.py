"""Sign-in: email and password, then whatever step the session still needs
(a TOTP or recovery code, the PIN, or enrolling TOTP when 2FA is required).

One page, ``/login``, shows the step the cookie's session is at; each step
posts to its own path. Every rule (which steps, in what order, throttling,
the allow-list) is core's: a handler only maps core's answer to a page.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from quatrix_mfa.core import auth, devices, profile
from quatrix_mfa.core.errors import (
    AddressNotAllowed,
    NotAuthenticated,
    ParameterError,
    PendingSession,
    QuatrixError,
    TooManyAttempts,
    WrongCode,
)
from quatrix_mfa.core.model import TWO_FA, SessionKind, Step
from quatrix_mfa.web import recovery as recovery_pages
from quatrix_mfa.web.answers import forbidden, refusal
from quatrix_mfa.web.i18n import N_
from quatrix_mfa.web.page import BadForm, Browser, BrowserDep
from quatrix_mfa.web.security import NEXT_FIELD, safe_next
from quatrix_mfa.web.showing import enrollment_values, recovery_values

router = APIRouter(include_in_schema=False)

# What ``/login?notice=<key>`` says; only these keys, so a link cannot put
# words of its own on the page.
NOTICES = {
    "password-set": N_("Your password is set. Sign in with it."),
    "signed-out": N_("You are signed out."),
    "expired": N_("Your sign-in took too long and has ended. Please start again."),
}
STEP_PAGES = {Step.TOTP: "login_code.html", Step.PIN: "login_pin.html"}


@router.get("/")
def home(page: BrowserDep) -> Response:
    signed_in = page.caller is not None and not page.caller.session.pending
    return page.redirect("/account" if signed_in else "/login")


@router.get("/login")
def login_page(
    page: BrowserDep,
    next: str = "",
    recovery: str = "",
    notice: str = "",
) -> Response:
    """The form for the step the session is at; a full session goes on to ``next``."""
    target = safe_next(next)
    caller = page.caller
    if caller is None:
        shown = page.gettext(NOTICES[notice]) if notice in NOTICES else ""
        return page.render("login.html", next=target, email="", notice=shown)
    step = caller.pending_step
    if step is None:
        return page.redirect(target)
    return _step_page(page, step, target, recovery=bool(recovery))


def _step_page(
    page: Browser, step: Step, target: str, status: int = 200, **values: Any
) -> Response:
    if step is Step.ENROLL_TOTP:
        return _enroll_page(page, target, status, **values)
    values.setdefault("recovery", False)
    # The "Trust this browser for N days" box, on the last step only, while
    # the account allows trust (core/devices.py).
    caller = page.caller
    last = caller is not None and len(caller.session.steps) == 1
    days = caller.account.trusted_device_days if caller is not None and last else 0
    return page.render(STEP_PAGES[step], status, next=target, trust_days=days, **values)


def _enroll_page(page: Browser, target: str, status: int = 200, **values: Any) -> Response:
    enrollment = profile.totp_enrollment(page.core, page.ctx)
    return page.render(
        "login_enroll.html",
        status,
        secret=True,
        next=target,
        **enrollment_values(page, enrollment),
        **values,
    )


@router.post("/login")
def login_password(page: BrowserDep) -> Response:
    """Email and password: a full session goes to ``next``, a pending one to its step."""
    if not page.csrf_valid():
        return forbidden(page)
    target = safe_next(page.form.values.get(NEXT_FIELD))
    try:
        email = page.form.get("email")
        password = page.form.get("password")
    except BadForm as bad:
        return page.render(
            "login.html",
            400,
            next=target,
            email="",
            errors={bad.field: page.gettext(bad.problem)},
            notice="",
        )
    errors = {
        name: page.gettext("Required.")
        for name, value in (("email", email.strip()), ("password", password))
        if not value
    }
    if errors:
        return page.render("login.html", 400, next=target, email=email, errors=errors, notice="")
    try:
        result = auth.login_with_password(
            page.core,
            page.ctx,
            email,
            password,
            kind=SessionKind.BROWSER,
            device_token=page.request.cookies.get(page.web.cookies.device),
        )
    except (NotAuthenticated, TooManyAttempts, AddressNotAllowed) as error:
        status = (
            429
            if isinstance(error, TooManyAttempts)
            else 403
            if isinstance(error, AddressNotAllowed)
            else 401
        )
        return page.render(
            "login.html",
            status,
            next=target,
            email=email,
            errors={"password": refusal(page, error)},
            notice="",
        )
    page.carry(result.token)
    # Revoked, expired or forged: no use sending it again. Another user's
    # (two people on one browser) stays: its owner still signs in with it.
    if devices.dead_for_good(result.device_refused):
        page.set_cookies[page.web.cookies.device] = None
    if result.step is None:
        return recovery_pages.after_login(page, result, target)
    return page.redirect("/login", next=target)


def _pending_at(page: Browser, *steps: Step) -> bool:
    caller = page.caller
    return caller is not None and caller.pending_step in steps


def _restart(page: Browser, target: str, *, ended: bool = False) -> Response:
    """No pending session at the step posted: back to the sign-in page, which
    shows where it really is. One that expired or was closed (``ended``, or
    no session at all) is said so, rather than the form simply coming back."""
    if ended or page.caller is None:
        return page.redirect("/login", next=target, notice="expired")
    return page.redirect("/login", next=target)


@router.post("/login/code")
def login_code(page: BrowserDep) -> Response:
    """A TOTP code, or a recovery code in the same field."""
    return _second_factor(page, Step.TOTP)


@router.post("/login/pin")
def login_pin(page: BrowserDep) -> Response:
    return _second_factor(page, Step.PIN)


def _second_factor(page: Browser, step: Step) -> Response:
    target = safe_next(page.form.values.get(NEXT_FIELD))
    if not _pending_at(page, step):
        return _restart(page, target)
    if not page.csrf_valid():
        return forbidden(page)
    field = "pin" if step is Step.PIN else "code"
    recovery = page.form.values.get("recovery") == "1"
    try:
        code = page.form.get(field).strip()
    except BadForm as bad:
        return _step_page(
            page, step, target, 400, recovery=recovery, errors={field: page.gettext(bad.problem)}
        )
    remember = None
    if page.form.values.get("remember_device") == "yes":
        remember = devices.label_for(page.request.headers.get("user-agent"))
    try:
        result = auth.second_factor(
            page.core, page.ctx, page.core.factors.auth_type_of(step), code, remember=remember
        )
    except (WrongCode, TooManyAttempts, ParameterError) as error:
        # ParameterError: a TOTP code of the other length (8 digits for a
        # 6-digit key), told apart from a wrong one and counted as nothing.
        status = {TooManyAttempts: 429, ParameterError: 400}.get(type(error), 401)
        return _step_page(
            page, step, target, status, recovery=recovery, errors={field: refusal(page, error)}
        )
    except NotAuthenticated:  # five wrong codes closed it, or it expired
        page.signed_out()
        return _restart(page, target, ended=True)
    page.carry(result.token)
    if result.device_token is not None and page.caller is not None:
        page.trust_device(result.device_token, page.caller.account.trusted_device_days)
    if result.step is None:
        return recovery_pages.after_login(page, result, target)
    return page.redirect("/login", next=target)


@router.post("/login/enroll")
def login_enroll(page: BrowserDep) -> Response:
    """Confirm the shown TOTP key with a code: 2FA is on, the session full,
    and the recovery codes are shown, once."""
    target = safe_next(page.form.values.get(NEXT_FIELD))
    if not _pending_at(page, Step.ENROLL_TOTP):
        return _restart(page, target)
    if not page.csrf_valid():
        return forbidden(page)
    try:
        code = page.form.get("code").strip()
    except BadForm as bad:
        return _enroll_page(page, target, 400, errors={"code": page.gettext(bad.problem)})
    try:
        result = profile.set_factor(page.core, page.ctx, TWO_FA, code)
    except (WrongCode, TooManyAttempts) as error:
        status = 429 if isinstance(error, TooManyAttempts) else 401
        return _enroll_page(page, target, status, errors={"code": refusal(page, error)})
    except (NotAuthenticated, PendingSession):
        page.signed_out()
        return _restart(page, target, ended=True)
    except QuatrixError as error:  # the pending key expired meanwhile: a new one
        return _enroll_page(page, target, 400, errors={"code": refusal(page, error)})
    page.carry(result.token)
    codes = result.recovery_codes or []
    email = page.caller.user.email if page.caller else ""
    return page.render(
        "recovery_codes.html", secret=True, **recovery_values(page, codes, target, email)
    )
