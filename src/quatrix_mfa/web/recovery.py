"""Issue 12 in the sign-in pages: the "turn on 2FA now, or later" choice
during a grace period, starting a lost-device recovery from the 2FA or PIN
step, and the page the recovery's mailed cancel link opens.

A GET changes nothing (mail scanners follow links): the cancel page shows a
form with its CSRF token, and the form cancels.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from quatrix_mfa.core import auth, mail, mfa_recovery
from quatrix_mfa.core.errors import Forbidden, NotAuthenticated, ParameterError
from quatrix_mfa.core.model import Step
from quatrix_mfa.web.answers import forbidden
from quatrix_mfa.web.page import Browser, BrowserDep
from quatrix_mfa.web.security import NEXT_FIELD, safe_next

router = APIRouter(include_in_schema=False)

LATER_PATH = "/login/2fa-later"
CANCEL_PATH = "/recover-mfa/cancel/{id}"  # where mailed links point (core.links.recovery_link)
DAY = 86400.0


def after_login(page: Browser, result: auth.LoginResult, target: str) -> Response:
    """Where a sign-in goes on: during a 2FA grace period, to the choice of
    turning 2FA on now or later; else to ``target``."""
    if result.step is None and result.enroll_by is not None:
        return page.redirect(LATER_PATH, next=target)
    return page.redirect(target)


@router.get(LATER_PATH)
def later_page(page: BrowserDep, next: str = "") -> Response:
    """'Turn on 2FA now, or later (N days left)'."""
    target = safe_next(next)
    caller = page.caller
    if caller is None or caller.session.pending:
        return page.redirect("/login", next=target)
    enroll_by = auth.session_status(page.core, caller).enroll_by
    if enroll_by is None:
        return page.redirect(target)
    days = max(1, math.ceil((enroll_by - page.ctx.now) / DAY))
    return page.render("login_later.html", next=target, days=days, deadline=mail.moment(enroll_by))


@router.post("/login/recover")
def start_recovery(page: BrowserDep) -> Response:
    """'Lost your device?' on the 2FA or PIN step: start a recovery."""
    target = safe_next(page.form.values.get(NEXT_FIELD))
    caller = page.caller
    if caller is None or caller.pending_step not in (Step.TOTP, Step.PIN):
        return page.redirect("/login", next=target)
    if not page.csrf_valid():
        return forbidden(page)
    try:
        ready_at = mfa_recovery.start(page.core, page.ctx)
    except Forbidden:
        return _recover_page(page, "off", 403, next=target)
    except NotAuthenticated:
        page.signed_out()
        return page.redirect("/login", next=target, notice="expired")
    return _recover_page(page, "started", next=target, ready_at=mail.moment(ready_at))


def _recover_page(page: Browser, state: str, status: int = 200, **values: Any) -> Response:
    return page.render("login_recover.html", status, state=state, **values)


@router.get(CANCEL_PATH)
def cancel_page(id: str, page: BrowserDep) -> Response:
    """The mailed link: a form that cancels the recovery."""
    return page.render("recover_cancel.html", state="ask", link_id=id)


@router.post(CANCEL_PATH)
def cancel_submit(id: str, page: BrowserDep) -> Response:
    if not page.csrf_valid():
        return page.render("forbidden.html", 403)
    try:
        mfa_recovery.cancel_by_link(page.core, page.ctx, id)
    except (NotAuthenticated, ParameterError):
        return page.render("recover_cancel.html", 404, state="dead")
    return page.render("recover_cancel.html", state="done")
