"""What the admin console's pages share: who may open them, and how core's
refusals read on a page. Every rule stays in core (``admin.require_admin``
decides who is an administrator); this only maps its answers to pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from quatrix_mfa.core import admin
from quatrix_mfa.core.errors import Forbidden, QuatrixError
from quatrix_mfa.web.answers import core_text
from quatrix_mfa.web.i18n import N_
from quatrix_mfa.web.page import Browser
from quatrix_mfa.web.security import safe_next

Handler = Callable[[Browser], Response]

# Marked here, translated where shown (``notice_box`` of admin_macros.html).
NOTICES = {
    "created": N_("The user is created; an invitation to set a password is on its way."),
    "saved": N_("Saved."),
    "deleted": N_("The user is deleted."),
    "done": N_("Done."),
}


def refused(page: Browser) -> Response | None:
    """The page to show instead when the caller may not use the console:
    sign-in first (and come back here) without a full session, 403 for a
    signed-in user who is no administrator. None: go ahead."""
    caller = page.caller
    if caller is None or caller.session.pending:
        url = page.request.url
        here = url.path + ("?" + url.query if url.query else "")
        # After signing in the browser GETs ``next``: a form's target is no page.
        return page.redirect(
            "/login", next=safe_next(here) if page.request.method == "GET" else "/admin"
        )
    try:
        admin.require_admin(page.ctx)
    except Forbidden:
        return page.render("admin_forbidden.html", 403)
    return None


def refused_post(page: Browser) -> Response | None:
    """As :func:`refused`, and a post without our CSRF token or from another
    site gets the 403 page: nothing changes."""
    stop = refused(page)
    if stop is None and not page.csrf_valid():
        return page.render("forbidden.html", 403)
    return stop


def problems(page: Browser, error: QuatrixError) -> dict[str, str]:
    """Core's refusal as field errors in the reader's language: each field it
    names gets the reason (with the ids or entries it lists), else the whole
    form (``_form``) does."""
    details: dict[str, Any] = error.details or {}
    reason = core_text(page, error.msg)
    found: dict[str, str] = {}
    for name, value in details.items():
        if isinstance(value, list):
            found[name] = f"{reason}: {', '.join(str(v) for v in value)}"
        elif name in error.msg:  # ParameterError.field: the problem says it all
            found[name] = core_text(page, str(value))
        else:
            found[name] = f"{reason}: {core_text(page, str(value))}"
    return found or {"_form": reason}


def notice_text(key: str) -> str:
    """A known notice after a redirect (never text from the query string)."""
    return NOTICES.get(key, "")


def text_field(page: Browser, name: str, limit: int = 255) -> tuple[str, str | None]:
    """A short text field of a console form, stripped: (value, problem in
    the reader's language)."""
    value = page.form.values.get(name, "").strip()
    if name in page.form.bad:
        return "", page.gettext(page.form.bad[name])
    if len(value) > limit:
        return value, page.gettext("At most %(n)d characters.") % {"n": limit}
    return value, None
