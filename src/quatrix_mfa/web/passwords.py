"""Setting a password from the mailed link, and asking for such a link."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from quatrix_mfa.core import passwords, reset
from quatrix_mfa.core.errors import EmailTaken, NotAuthenticated, ParameterError, WeakPassword
from quatrix_mfa.web.page import BadForm, Browser, BrowserDep

router = APIRouter(include_in_schema=False)

RESET_PATH = "/reset-password/{id}"  # where mailed links point (core.links.link)


def _form(page: Browser, reset_id: str, status: int = 200, **errors: str) -> Response:
    """The form, with core's password rules said up front."""
    return page.render(
        "reset_password.html",
        status,
        reset_id=reset_id,
        errors=errors,
        min_length=passwords.MIN_LENGTH,
        max_length=passwords.MAX_LENGTH,
    )


def _dead_link(page: Browser) -> Response:
    return page.render("reset_invalid.html", 404)


def _address_taken(page: Browser) -> Response:
    # Another user signs in with the link's address: only that address's
    # holder, who got the link, sees this, and knows it already.
    return page.render("reset_taken.html", 400)


@router.get(RESET_PATH)
def reset_page(id: str, page: BrowserDep) -> Response:
    """The set-password form of a live link; a used or expired one says so,
    and so does one whose address another user already signs in with."""
    try:
        reset.check_redeemable(page.core, page.ctx, id)
    except (NotAuthenticated, ParameterError):
        return _dead_link(page)
    except EmailTaken:
        return _address_taken(page)
    return _form(page, id)


@router.post(RESET_PATH)
def reset_submit(id: str, page: BrowserDep) -> Response:
    if not page.csrf_valid():
        return page.render("forbidden.html", 403)

    try:
        new = page.form.get("new_password")
        confirm = page.form.get("confirm_password")
    except BadForm as bad:
        return _form(page, id, 400, **{bad.field: bad.problem})
    if new != confirm:
        return _form(page, id, 400, **{"confirm_password": "The two passwords differ."})
    try:
        reset.reset_password(page.core, page.ctx, id, new)
    except WeakPassword as weak:
        return _form(page, id, 400, new_password=weak.msg)
    except EmailTaken:
        return _address_taken(page)
    except (NotAuthenticated, ParameterError):
        return _dead_link(page)
    return page.redirect("/login", notice="password-set")


@router.get("/forgot-password")
def forgot_page(page: BrowserDep) -> Response:
    return page.render("forgot_password.html", email="")


@router.post("/forgot-password")
def forgot_submit(page: BrowserDep) -> Response:
    """The same answer whether the email is known or not (core sees to the
    timing and the mail)."""
    if not page.csrf_valid():
        return page.render("forbidden.html", 403)
    try:
        email = page.form.get("email").strip()
    except BadForm as bad:
        return page.render("forgot_password.html", 400, email="", errors={"email": bad.problem})
    if not email or len(email) > 255:
        errors = {"email": "Enter the email address of your account."}
        return page.render("forgot_password.html", 400, email=email, errors=errors)
    reset.request_reset(page.core, page.ctx, [email])
    return page.render("forgot_sent.html", email=email)
