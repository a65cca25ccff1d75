"""Setting a password from the mailed link, and asking for such a link."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from quatrix_mfa.core import passwords, reset
from quatrix_mfa.core.errors import EmailTaken, NotAuthenticated, ParameterError, WeakPassword
from quatrix_mfa.web.i18n import N_
from quatrix_mfa.web.page import BadForm, Browser, BrowserDep

router = APIRouter(include_in_schema=False)

RESET_PATH = "/reset-password/{id}"  # where mailed links point (core.links.link)

# Core's password rules (core.passwords), said to a person; the numbers are core's.
WEAK_REASONS = {
    "too_long": N_("Too long: at most %(max)d characters."),
    "too_short": N_("Too short: at least %(min)d characters."),
    "common": N_("Too common: this password is in lists that attackers try first."),
    "service_name": N_("Too easy to guess: it is the name of this service."),
    "same_as_email": N_("Too easy to guess: it is your email address."),
}


def weak_password(page: Browser, weak: WeakPassword) -> str:
    """Why core refused a new password, in the reader's language."""
    rule = WEAK_REASONS.get(weak.reason, N_("Too weak: choose a longer password."))
    return page.gettext(rule) % {"min": passwords.MIN_LENGTH, "max": passwords.MAX_LENGTH}


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
        return _form(page, id, 400, **{bad.field: page.gettext(bad.problem)})
    if new != confirm:
        differ = page.gettext("The two passwords differ.")
        return _form(page, id, 400, confirm_password=differ)
    try:
        reset.reset_password(page.core, page.ctx, id, new)
    except WeakPassword as weak:
        return _form(page, id, 400, new_password=weak_password(page, weak))
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
        errors = {"email": page.gettext(bad.problem)}
        return page.render("forgot_password.html", 400, email="", errors=errors)
    if not email or len(email) > 255:
        errors = {"email": page.gettext("Enter the email address of your account.")}
        return page.render("forgot_password.html", 400, email=email, errors=errors)
    reset.request_reset(page.core, page.ctx, [email])
    return page.render("forgot_sent.html", email=email)
