"""``/account/sessions``: the caller's open sessions (browser or API, client
address, started, last seen; this browser marked) with "sign out" for one
and for all others. Each is named by core's non-secret handle, and core
looks a handle up among the caller's own sessions only."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from starlette.responses import Response

from quatrix_mfa.core import own_sessions
from quatrix_mfa.core.errors import NotFound
from quatrix_mfa.web.account import NOTICES
from quatrix_mfa.web.answers import fields, guard
from quatrix_mfa.web.i18n import N_
from quatrix_mfa.web.page import Browser, BrowserDep

router = APIRouter(include_in_schema=False)

PATH = "/account/sessions"
CLOSE_PATH = PATH + "/close"
CLOSE_OTHERS_PATH = PATH + "/close-others"
HANDLE_FIELD = "session"


def when(at: float) -> tuple[str, str]:
    """A time as (ISO 8601 for ``<time datetime>``, what a person reads), in UTC."""
    moment = datetime.fromtimestamp(at, UTC)
    return moment.isoformat(timespec="seconds"), moment.strftime("%Y-%m-%d %H:%M UTC")


def _page(page: Browser, status: int = 200, *, notice: str = "", error: str = "") -> Response:
    listed = own_sessions.list_own(page.core, page.ctx)
    return page.render(
        "account_sessions.html",
        status,
        notice=notice,
        error=error,
        sessions=[
            {"s": s, "started": when(s.started), "last_seen": when(s.last_seen)} for s in listed
        ],
        others=sum(1 for s in listed if not s.current),
        handle_field=HANDLE_FIELD,
    )


@router.get(PATH)
def sessions_page(page: BrowserDep, notice: str = "") -> Response:
    if (answer := guard(page)) is not None:
        return answer
    return _page(page, notice=NOTICES.get(notice, ""))


@router.post(CLOSE_PATH)
def close_one(page: BrowserDep) -> Response:
    """Sign out one session of the caller's; this browser's own signs it out."""
    if (answer := guard(page, back=PATH)) is not None:
        return answer
    given, errors = fields(page, HANDLE_FIELD)
    try:
        if errors or not given[HANDLE_FIELD]:
            raise NotFound()
        own = own_sessions.close_own(page.core, page.ctx, given[HANDLE_FIELD])
    except NotFound:
        # Marked here, translated where shown (the template's ``_(error)``).
        return _page(page, 404, error=N_("That session is not one of yours, or it already ended."))
    if own:
        page.signed_out()
        return page.redirect("/login", notice="signed-out")
    return page.redirect(PATH, notice="session-closed")


@router.post(CLOSE_OTHERS_PATH)
def close_others(page: BrowserDep) -> Response:
    if (answer := guard(page, back=PATH)) is not None:
        return answer
    own_sessions.close_others(page.core, page.ctx)
    return page.redirect(PATH, notice="others-closed")
