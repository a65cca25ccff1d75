"""The audit trail in the admin console: filters (user, event, outcome, a
time range of days in UTC) and keyset paging, newest first."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.responses import Response

from quatrix_mfa.core import directory
from quatrix_mfa.core.errors import QuatrixError
from quatrix_mfa.core.model import AuditEvent
from quatrix_mfa.web.admin_common import problems, refused
from quatrix_mfa.web.page import BrowserDep

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
DAY = 86400.0


def parse_day(text: str) -> float | None:
    """``YYYY-MM-DD`` (what a date input sends) as the start of that UTC day;
    ValueError for anything else."""
    if not text:
        return None
    if len(text) != 10:
        raise ValueError(text)
    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _row(event: AuditEvent, emails: dict[str, str]) -> dict[str, str]:
    def who(user_id: str | None) -> str:
        return "" if user_id is None else emails.get(user_id, user_id)

    return {
        "at": _when(event.at),
        "event": event.event,
        "outcome": event.outcome,
        "actor": who(event.actor_id),
        "target": who(event.target_id),
        "addr": event.client_addr or "",
        "detail": json.dumps(event.detail, sort_keys=True) if event.detail else "",
    }


@router.get("/admin/audit")
def audit_page(
    page: BrowserDep,
    user: str = "",
    event: str = "",
    outcome: str = "",
    since: str = "",
    until: str = "",
    before: str = "",
) -> Response:
    """The account's audit rows matching the filters, newest first, 50 a page."""
    stop = refused(page)
    if stop is not None:
        return stop
    filters = {"user": user, "event": event, "outcome": outcome, "since": since, "until": until}
    errors: dict[str, str] = {}
    bounds: dict[str, float | None] = {}
    for name in ("since", "until"):
        try:
            bounds[name] = parse_day(filters[name])
        except (ValueError, OverflowError):
            errors[name] = page.gettext("A date as YYYY-MM-DD.")
    end = bounds.get("until")
    wanted = directory.AuditFilter(
        user, event, outcome, bounds.get("since"), None if end is None else end + DAY
    )
    rows: list[dict[str, str]] = []
    more = None
    if not errors:
        try:
            found = directory.find_audit(page.core, page.ctx, wanted, before or None, PAGE_SIZE)
        except QuatrixError as error:
            errors = problems(page, error)
        else:
            ids = {i for e in found.rows for i in (e.actor_id, e.target_id) if i is not None}
            emails = directory.emails_of(page.core, page.ctx, ids)
            rows, more = [_row(e, emails) for e in found.rows], found.next_cursor
    query = {k: v for k, v in filters.items() if v}
    return page.render(
        "admin_audit.html",
        400 if errors else 200,
        errors=errors,
        filters=filters,
        rows=rows,
        events=[(e, e) for e in directory.EVENTS],
        outcomes=[(o, o) for o in directory.OUTCOMES],
        next_url="/admin/audit?" + urlencode({**query, "before": more}) if more else "",
        first_url=("/admin/audit?" + urlencode(query)) if before else "",
    )
