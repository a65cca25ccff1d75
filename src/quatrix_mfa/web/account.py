"""The signed-in side: the account page and signing out. A page that needs a
full session sends anyone else to ``/login?next=<this page>``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from quatrix_mfa.core import policy, sessions
from quatrix_mfa.web.page import Browser, BrowserDep
from quatrix_mfa.web.security import safe_next

router = APIRouter(include_in_schema=False)


def to_login(page: Browser) -> Response:
    """No full session: sign in first, then come back here (a local path)."""
    url = page.request.url
    here = url.path + ("?" + url.query if url.query else "")
    return page.redirect("/login", next=safe_next(here))


@router.get("/account")
def account_page(page: BrowserDep) -> Response:
    caller = page.caller
    if caller is None or caller.session.pending:
        return to_login(page)
    user, account = caller.user, caller.account
    return page.render(
        "account.html",
        name=user.name,
        email=user.email,
        account_name=account.name,
        totp_on=policy.totp_chosen(user),
        totp_required=policy.needs_totp(account, user),
        totp_forced=policy.totp_forced(account, user),
        pin_on=user.pin_active,
        pin_forced=user.pin_forced,
    )


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
