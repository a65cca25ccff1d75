"""Confirming a changed email from the link mailed to the new address.

The link opens a page with a confirm button (a GET changes nothing: mail
scanners and previews follow links); the form, with its CSRF token, confirms.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from quatrix_mfa.core import email_change
from quatrix_mfa.core.errors import EmailTaken, NotAuthenticated, ParameterError
from quatrix_mfa.web.page import Browser, BrowserDep

router = APIRouter(include_in_schema=False)

CONFIRM_PATH = "/confirm-email/{id}"  # where mailed links point (core.links.email_link)


def _show(page: Browser, state: str, status: int = 200, **values: Any) -> Response:
    return page.render("confirm_email.html", status, state=state, **values)


@router.get(CONFIRM_PATH)
def confirm_page(id: str, page: BrowserDep) -> Response:
    """The confirm form of a live link; a used or expired one says so."""
    try:
        new_email = email_change.pending_address(page.core, page.ctx, id)
    except (NotAuthenticated, ParameterError):
        return _show(page, "dead", 404)
    return _show(page, "ask", link_id=id, new_email=new_email)


@router.post(CONFIRM_PATH)
def confirm_submit(id: str, page: BrowserDep) -> Response:
    if not page.csrf_valid():
        return page.render("forbidden.html", 403)
    try:
        email_change.confirm(page.core, page.ctx, id)
    except EmailTaken:
        return _show(page, "taken", 400)
    except (NotAuthenticated, ParameterError):
        return _show(page, "dead", 404)
    return _show(page, "done")
