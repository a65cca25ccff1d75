"""Attack: flooding ``POST /reset-password/request``, the one write path that
needs no login.

The review (issue 17, defect 3) sent 568 requests of 50 emails in 15 s: each
ran ~250 statements and wrote 50 audit rows in one write transaction, took
keepalive p50 from 1.5 to 104 ms and admin login p50 from 26 to 231 ms, added
28,410 audit rows (+16 MB) and never got a 429. Now requests are counted like
logins: per client network (once per distinct email asked for) and per email,
each on its own counters; past the threshold the answer is 429 code 13 with
``Retry-After`` for any email alike, and a refused request writes nothing. A
call does one round per distinct email, and audit rows are purged after
``QUATRIX_MFA_AUDIT_RETENTION_DAYS``.
"""

from __future__ import annotations

from typing import Any

from quatrix_mfa.core import maintenance
from tests.conftest import ADMIN_EMAIL, Api, error
from tests.support.http import visible

BATCH = 50


def emails(start: int, count: int = BATCH) -> list[str]:
    return [f"stranger{n}@example.org" for n in range(start, start + count)]


def ask(api: Api, wanted: list[str], addr: str | None = None) -> Any:
    headers = {"X-Forwarded-For": addr} if addr else {}
    return api.post("/reset-password/request", {"email": wanted}, headers=headers)


def written(api: Api) -> tuple[int, int, int]:
    """Audit rows, reset links and mails: what a request may write."""
    with api.core.store.transaction(write=False) as tx:
        audit = len(tx.audit.list(limit=100_000))
        mails = tx.outbox.list(100_000)
        links = sum(1 for m in mails if m.secret is not None)
    return audit, links, len(mails)


def test_a_flood_from_one_address_gets_429_after_the_address_budget(api: Api) -> None:
    threshold = api.core.throttle_policy.address_threshold
    for start in range(0, threshold, BATCH):
        assert ask(api, emails(start)).status_code == 200
    before = written(api)
    # The request that would have been the review's third: refused, nothing written.
    flood = ask(api, emails(threshold))
    error(flood, 429, 13)
    assert int(flood.headers["Retry-After"]) > 0
    assert written(api) == before
    # Refused alike whatever the email: the admin's own, or an unknown one.
    known, unknown = ask(api, [ADMIN_EMAIL]), ask(api, ["nomad@example.com"])
    assert visible(known) == visible(unknown)
    assert known.status_code == 429
    assert written(api) == before


def test_one_email_asked_for_from_many_addresses_gets_429(make_api: Any, api: Api) -> None:
    web: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True)
    threshold = web.core.throttle_policy.user_threshold
    for n in range(threshold):
        web.clock.advance(web.core.links.resend_after)
        assert ask(web, [ADMIN_EMAIL], f"198.51.100.{n + 1}").status_code == 200
    error(ask(web, [ADMIN_EMAIL], "203.0.113.9"), 429, 13)
    # An unknown email is held the same way: the counter is the email's hash.
    for n in range(threshold):
        assert ask(web, ["nomad@example.com"], f"192.0.2.{n + 1}").status_code == 200
    error(ask(web, ["nomad@example.com"], "203.0.113.10"), 429, 13)
    # Other emails from a fresh address are not held.
    assert ask(web, ["someone@example.com"], "203.0.113.11").status_code == 200


def test_an_email_repeated_in_one_call_is_one_round(api: Api) -> None:
    audit_before = written(api)[0]
    response = ask(api, ["Nomad@Example.com"] * 30 + ["nomad@example.com"] * 20)
    assert response.status_code == 200
    assert response.json() == {"email": ["Nomad@Example.com"] * 30 + ["nomad@example.com"] * 20}
    assert written(api)[0] == audit_before + 1


def test_asking_for_links_never_delays_a_login(api: Api) -> None:
    threshold = api.core.throttle_policy.address_threshold
    for start in range(0, threshold + BATCH, BATCH):
        ask(api, emails(start))
    assert api.login(ADMIN_EMAIL, "correct horse battery").status_code == 200


def test_audit_rows_past_their_retention_are_purged(make_api: Any, api: Api) -> None:
    web: Api = make_api(audit_retention_days=30)
    assert ask(web, emails(0, 10)).status_code == 200
    old = written(web)[0]
    web.clock.advance(29 * 86400)
    assert ask(web, emails(10, 5)).status_code == 200
    assert maintenance.purge(web.core, web.clock.now())["audit"] == 0
    web.clock.advance(2 * 86400)  # the first rows are 31 days old, the next 2 days
    assert maintenance.purge(web.core, web.clock.now())["audit"] == old
    assert written(web)[0] == 5
