"""Issue 15, item 1: /metrics names and values after a scripted run of logins,
who may read it, and no user data in any label."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from quatrix_mfa.api.app import sample_gauges
from quatrix_mfa.core import maintenance
from quatrix_mfa.core.bootstrap import bootstrap
from quatrix_mfa.core.model import Step
from quatrix_mfa.metrics import METRIC_NAMES
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, error
from tests.support.http import login_from
from tests.support.metrics import METRICS_TOKEN, delta, parse, scrape, value
from tests.support.scenario import WRONG_PASSWORD

LOGINS = "quatrix_mfa_logins_total"
REQUESTS = "quatrix_mfa_http_requests_total"
LOGIN_ROUTE = "/api/1.0/session/login"


@pytest.fixture
def metered(make_api: Any) -> Api:
    """The API with /metrics on the main port for METRICS_TOKEN's bearer."""
    built: Api = make_api(metrics_token=METRICS_TOKEN, trust_forwarded_for=True, peer="127.0.0.1")
    assert bootstrap(built.core, ADMIN_EMAIL, "Example", ADMIN_PASSWORD).created
    return built


def test_a_scripted_run_of_logins_is_counted_by_step_outcome_and_factor(metered: Api) -> None:
    app = metered.http.app
    admin = metered.full_session()
    user = metered.scenario.user_with_totp(admin, "tina@example.com")
    before = scrape(app)

    # Password: two right (one stops at TOTP), one wrong.
    metered.full_session()
    pending = metered.scenario.pending(user.email, user.password)
    error(metered.login(ADMIN_EMAIL, WRONG_PASSWORD), 401, 1)
    # Second factor: right, then the same code again (replayed), then a wrong one.
    code = metered.code(user.secret)
    body = {"auth_type": "2FA", "code": code}
    assert metered.post("/session/login", body, pending).status_code == 200
    again = metered.scenario.pending(user.email, user.password)
    error(metered.post("/session/login", body, again), 401, 11)
    wrong = {"auth_type": "2FA", "code": metered.scenario.wrong_code(user.secret)}
    error(metered.post("/session/login", wrong, again), 401, 11)
    after = scrape(app)

    assert delta(before, after, LOGINS, step="password", outcome="ok", factor="password") == 3
    assert delta(before, after, LOGINS, step="password", outcome="wrong", factor="password") == 1
    assert delta(before, after, LOGINS, step="second_factor", outcome="ok", factor="totp") == 1
    assert (
        delta(before, after, LOGINS, step="second_factor", outcome="replayed", factor="totp") == 1
    )
    assert delta(before, after, LOGINS, step="second_factor", outcome="wrong", factor="totp") == 1
    opened = "quatrix_mfa_sessions_opened_total"
    assert delta(before, after, opened, state="full") == 2  # admin, tina after her code
    assert delta(before, after, opened, state="pending") == 2
    login_200 = {"route": LOGIN_ROUTE, "method": "GET", "status": "200"}
    assert delta(before, after, REQUESTS, **login_200) == 1
    assert delta(before, after, REQUESTS, route=LOGIN_ROUTE, method="GET", status="207") == 2
    assert delta(before, after, REQUESTS, route=LOGIN_ROUTE, method="POST", status="401") == 2
    count = "quatrix_mfa_http_request_duration_seconds_count"
    assert delta(before, after, count, route=LOGIN_ROUTE) == 7

    assert metered.get("/session/logout", admin).status_code == 200
    closed = scrape(app)
    assert delta(after, closed, "quatrix_mfa_sessions_closed_total", reason="logout") == 1


def test_throttled_logins_count_as_429s_and_as_throttled(metered: Api) -> None:
    app = metered.http.app
    before = scrape(app)
    for _ in range(metered.core.throttle.policy.user_threshold + 2):  # type: ignore[attr-defined]
        last = login_from(metered, "192.0.2.9", ADMIN_EMAIL, WRONG_PASSWORD)
    assert last.status_code == 429
    after = scrape(app)
    assert delta(before, after, "quatrix_mfa_http_rate_limited_total", route=LOGIN_ROUTE) >= 1
    assert delta(before, after, REQUESTS, route=LOGIN_ROUTE, method="GET", status="429") >= 1
    assert (
        delta(before, after, LOGINS, step="password", outcome="throttled", factor="password") >= 1
    )


def test_second_factor_outcomes_name_the_factor_that_checked_the_code(metered: Api) -> None:
    """A wrong TOTP code, a wrong recovery code, a wrong PIN and a throttled
    code are each labelled by their factor, not by the step's auth_type."""
    app = metered.http.app
    admin = metered.full_session()
    tina = metered.scenario.user_with_totp(admin, "tina@example.com")
    pia = metered.scenario.user_with_pin(admin, "pia@example.com")
    before = scrape(app)

    pending = metered.scenario.pending(tina.email, tina.password)
    wrong_totp = {"auth_type": "2FA", "code": metered.scenario.wrong_code(tina.secret)}
    error(metered.post("/session/login", wrong_totp, pending), 401, 11)
    wrong_recovery = {"auth_type": "2FA", "code": "ABCD-EFGH-JKMN-PQRS"}
    error(metered.post("/session/login", wrong_recovery, pending), 401, 11)
    right_recovery = {"auth_type": "2FA", "code": tina.recovery_codes[0]}
    assert metered.post("/session/login", right_recovery, pending).status_code == 200
    pin_pending = metered.scenario.pending(pia.email, pia.password, Step.PIN)
    wrong_pin = {"auth_type": "PIN", "code": "1357"}
    error(metered.post("/session/login", wrong_pin, pin_pending), 401, 11)
    after = scrape(app)

    second = {"step": "second_factor"}
    assert delta(before, after, LOGINS, **second, outcome="wrong", factor="totp") == 1
    assert delta(before, after, LOGINS, **second, outcome="wrong", factor="recovery") == 1
    assert delta(before, after, LOGINS, **second, outcome="ok", factor="recovery") == 1
    assert delta(before, after, LOGINS, **second, outcome="wrong", factor="pin") == 1

    # Throttled at the second step: wrong codes on pending sessions opened
    # before the user's counter filled (four each: the fifth closes one).
    sessions = [metered.scenario.pending(tina.email, tina.password) for _ in range(4)]
    answers = [
        metered.post("/session/login", wrong_totp, token).status_code
        for token in sessions
        for _ in range(4)
    ]
    assert answers.count(429) >= 1, answers
    final = scrape(app)
    throttled = delta(after, final, LOGINS, **second, outcome="throttled", factor="totp")
    assert throttled == answers.count(429)
    factors = {v for (_, pairs) in final for (k, v) in pairs if k == "factor"}
    assert factors <= {"password", "totp", "recovery", "pin", "other"}


def test_no_label_holds_a_user_id_email_address_or_token(metered: Api) -> None:
    admin = metered.full_session()
    user = metered.scenario.user(admin, "leak.check@example.com")
    login_from(metered, "198.51.100.23", user.email, WRONG_PASSWORD)
    assert metered.get(f"/user/metadata/{user.id}", admin).status_code == 200
    metered.get("/no/such/path/leak.check@example.com")
    samples = scrape(metered.http.app)
    labels = {v for (_, pairs) in samples for (_, v) in pairs}
    for secret in (user.id, user.email, "198.51.100.23", "127.0.0.1", admin, user.token):
        assert not any(secret in label for label in labels), secret
    # Each label value is one of a few shapes: route templates, methods,
    # statuses, names from the code, histogram bounds.
    allowed = re.compile(r"(/[A-Za-z0-9_.{}/-]*|[a-z0-9_]+|[A-Z][A-Za-z]+|\d{3}|[0-9.e+]+|\+Inf)")
    assert [label for label in labels if not allowed.fullmatch(label)] == []
    routes = {v for (_, pairs) in samples for (k, v) in pairs if k == "route"}
    assert "/api/1.0/user/metadata/{id}" in routes
    assert "unmatched" in routes


def test_every_metric_of_the_issue_is_exported(metered: Api) -> None:
    metered.full_session()
    sample_gauges(metered.core, metered.http.app.state.store)
    samples = scrape(metered.http.app)
    names = {name for (name, _) in samples}
    for metric in METRIC_NAMES:
        assert any(n == metric or n.startswith(metric + "_") for n in names), metric


def test_the_outbox_depth_is_the_mail_waiting(metered: Api) -> None:
    admin = metered.full_session()
    store = metered.http.app.state.store
    sample_gauges(metered.core, store)
    before = value(scrape(metered.http.app), "quatrix_mfa_outbox_depth")
    metered.scenario.invite(admin, "waiting@example.com")  # one mail queued, no sender
    sample_gauges(metered.core, store)
    after = scrape(metered.http.app)
    assert value(after, "quatrix_mfa_outbox_depth") == before + 1
    assert value(after, "quatrix_mfa_db_pool_in_use") == 0
    assert value(after, "quatrix_mfa_argon2_waiting") == 0


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-of-the-same-length!!", "Basic " + METRICS_TOKEN, METRICS_TOKEN],
)
def test_metrics_without_the_bearer_token_are_a_404(
    metered: Api, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = TestClient(metered.http.app).get("/metrics", headers=headers)
    nowhere = TestClient(metered.http.app).get("/no-such-page", headers=headers)
    assert response.status_code == 404
    assert response.text == nowhere.text
    assert "quatrix_mfa" not in response.text


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/metrics"), ("DELETE", "/metrics"), ("GET", "/metrics/"), ("HEAD", "/metrics/")],
)
def test_no_other_method_or_spelling_tells_an_outsider_that_metrics_exist(
    metered: Api, method: str, path: str
) -> None:
    # Found by review: POST answered 405 and "/metrics/" a redirect to
    # "/metrics", where an unknown path answers 404.
    client = TestClient(metered.http.app)
    answer = client.request(method, path, follow_redirects=False)
    nowhere = client.request(method, "/no-such-page", follow_redirects=False)
    assert answer.status_code == nowhere.status_code == 404
    assert answer.text == nowhere.text
    bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    with_token = client.request(method, path, headers=bearer, follow_redirects=False)
    assert with_token.status_code == (405 if path == "/metrics" else 404)


@pytest.mark.parametrize(
    "overrides", [{}, {"metrics_token": METRICS_TOKEN, "metrics_addr": ("127.0.0.1", 9108)}]
)
def test_no_metrics_on_the_main_port_without_a_token_or_with_their_own_address(
    make_api: Any, overrides: dict[str, Any]
) -> None:
    app = make_api(**overrides).http.app
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert TestClient(app).get("/metrics", headers=headers).status_code == 404


def test_the_parser_reads_what_the_app_writes() -> None:
    # The helper the other tests lean on: a sample it cannot see would hide a count.
    text = '# TYPE x_total counter\nx_total{a="b"} 3.0\n'
    assert value(parse(text), "x_total", a="b") == 3.0


def test_sessions_ending_by_expiry_are_counted_as_closed_expired(metered: Api) -> None:
    """Idle past its bound and found so by a request, or past its absolute
    time and deleted by the background purge: each is one closing, "expired"."""
    app = metered.http.app
    core = metered.core
    idle = metered.full_session()
    before = scrape(app)
    metered.clock.advance(core.sessions.idle_seconds + 1)
    error(metered.get("/profile", idle), 401, 1)
    found = scrape(app)
    assert delta(before, found, "quatrix_mfa_sessions_closed_total", reason="expired") == 1

    left = [metered.full_session() for _ in range(2)]  # nobody comes back for these
    metered.clock.advance(core.sessions.max_seconds + 1)
    purged = maintenance.purge(core, metered.clock.now())
    assert purged["sessions"] == len(left)
    after = scrape(app)
    assert delta(found, after, "quatrix_mfa_sessions_closed_total", reason="expired") == 2
    # Purged once: a second purge finds nothing more to count.
    maintenance.purge(core, metered.clock.now())
    again = scrape(app)
    assert delta(after, again, "quatrix_mfa_sessions_closed_total", reason="expired") == 0
