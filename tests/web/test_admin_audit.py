"""The audit trail in the admin console, in-process: newest first, people
named by email, filters by user, event, outcome and days, keyset paging,
only the administrator's own account, and bad input as an error on the page."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from quatrix_mfa.core import audit
from quatrix_mfa.core.model import AuditEvent
from tests.conftest import ADMIN_EMAIL
from tests.support.admin import add_users, admin_account, stored, walk
from tests.web.conftest import Site

DAY = 86400.0


def events_on(page_html: str) -> list[str]:
    return re.findall(r'<tr data-event="([^"]+)">', page_html)


def day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


def append(site: Site, count: int, event: str = audit.FACTOR_SET, **fields: object) -> None:
    account = admin_account(site.core)
    with site.core.store.transaction() as tx:
        for n in range(count):
            tx.audit.append(
                AuditEvent(
                    at=site.clock.now(),
                    event=event,
                    outcome=audit.SUCCESS,
                    account_id=fields.get("account_id", account.id),  # type: ignore[arg-type]
                    target_id=fields.get("target_id"),  # type: ignore[arg-type]
                    detail={"n": n},
                )
            )


def test_the_trail_is_newest_first_and_names_people_by_email(site: Site) -> None:
    site.sign_in()
    site.submit(
        "/admin/users/new",
        "/admin/users/new",
        {"name": "Audited", "email": "audited@example.com", "role": "user"},
    )
    page = site.get("/admin/audit")
    assert page.status_code == 200
    assert events_on(page.text)[:2] == [audit.USER_CREATED, audit.LOGIN_PASSWORD]
    assert "audited@example.com" in page.text and ADMIN_EMAIL in page.text


def test_filters_by_user_event_and_outcome(site: Site) -> None:
    first, second = add_users(site.core, 2)
    append(site, 2, target_id=first.id)
    append(site, 3, target_id=second.id)
    site.sign_in()
    by_email = site.get("/admin/audit?user=" + first.email)
    assert len(events_on(by_email.text)) == 2
    by_id = site.get(f"/admin/audit?user={second.id}&event={audit.FACTOR_SET}")
    assert len(events_on(by_id.text)) == 3
    assert events_on(site.get(f"/admin/audit?event={audit.LOGIN_PASSWORD}").text) == [
        audit.LOGIN_PASSWORD
    ]
    assert events_on(site.get("/admin/audit?outcome=denied").text) == []
    assert events_on(site.get("/admin/audit?user=nobody@example.com").text) == []


def test_a_time_range_of_days_bounds_the_trail(site: Site) -> None:
    start = site.clock.now()
    append(site, 1, audit.FACTOR_RESET)
    site.clock.advance(2 * DAY)
    append(site, 1, audit.FACTOR_REMOVED)
    site.clock.advance(2 * DAY)
    site.sign_in()
    only_first = site.get(f"/admin/audit?until={day(start)}").text
    assert events_on(only_first) == [audit.FACTOR_RESET, audit.USER_CREATED]  # + bootstrap
    middle = site.get(f"/admin/audit?since={day(start + DAY)}&until={day(start + 3 * DAY)}")
    assert events_on(middle.text) == [audit.FACTOR_REMOVED]


def test_the_trail_pages_through_three_pages_without_gaps(site: Site) -> None:
    append(site, 120)
    site.sign_in()  # one more row, the sign-in
    pages = walk(site, "/admin/audit")
    assert len(pages) == 3
    seen = [n for page in pages for n in re.findall(r"\{&#34;n&#34;: (\d+)\}", page)]
    assert seen == [str(n) for n in range(119, -1, -1)]


def test_another_accounts_rows_are_not_shown(site: Site) -> None:
    append(site, 1, audit.FACTOR_RESET, account_id="00000000-0000-4000-8000-000000000000")
    site.sign_in()
    assert audit.FACTOR_RESET not in events_on(site.get("/admin/audit").text)


def test_the_sessions_a_change_closes_are_in_the_accounts_trail(site: Site) -> None:
    (person,) = add_users(site.core, 1)
    site.sign_in()
    page = f"/admin/users/{person.id}"
    site.submit(page, page + "/factors", {"action": "force-2fa"})
    trail = site.get(f"/admin/audit?user={person.id}").text
    assert events_on(trail) == [audit.SESSION_CLOSED, audit.FACTOR_SET]
    assert stored(site.core, person.email).twofa_forced


def test_bad_filters_and_cursors_are_errors_on_the_page_never_a_500(site: Site) -> None:
    site.sign_in()
    for query in (
        "since=yesterday",
        "until=2026-13-40",
        "since=99999-01-01",
        "since=2026-02-02&until=2026-01-01",
        "event=made.up",
        "before=" + "9" * 40,
        "before=-1",
        "before=abc",
        "user=" + "x" * 300,
    ):
        response = site.get("/admin/audit?" + query)
        assert response.status_code == 400, query
        assert 'class="error"' in response.text, query
