"""Issue 14: the session check (``GET /api/1.0/profile``) is answered in front
of FastAPI's router (api/hot.py). It must answer exactly as the router's
route does: same status, body and headers, for every kind of token."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from quatrix_mfa.api.app import create_app
from quatrix_mfa.core.clock import FakeClock
from quatrix_mfa.settings import Settings
from tests.conftest import Api
from tests.support.http import login_from, restrict, visible
from tests.support.scenario import ADMIN_EMAIL, ADMIN_PASSWORD

PROFILE = "/profile"


@pytest.fixture
def through_router(settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    """The same deployment (database, keys, clock) served without api/hot.py:
    every request goes through FastAPI's router and dependencies."""
    app = create_app(replace(settings), clock=clock, background=False, hot_paths=False)
    with TestClient(
        app,
        base_url="http://testserver/api/1.0",
        raise_server_exceptions=False,
        client=("testclient", 50000),
    ) as client:
        yield client


def _full(api: Api) -> dict[str, str]:
    return {"X-Auth-Token": api.full_session()}


def _pending(api: Api) -> dict[str, str]:
    login = api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    if login.status_code == 200:  # the first call: 2FA not on yet
        api.enroll_totp(login.headers["X-Auth-Token"])
        login = api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert login.status_code == 207, login.text
    return {"X-Auth-Token": login.headers["X-Auth-Token"]}


def _closed(api: Api) -> dict[str, str]:
    token = api.full_session()
    assert api.get("/session/logout", token).status_code == 200
    return {"X-Auth-Token": token}


def _expired(api: Api) -> dict[str, str]:
    token = api.full_session()
    api.clock.advance(api.core.sessions.max_seconds + 1)
    return {"X-Auth-Token": token}


CASES: dict[str, Callable[[Api], dict[str, str]]] = {
    "a full session": _full,
    "a pending session": _pending,
    "a closed session": _closed,
    "an expired session": _expired,
    "no token": lambda api: {},
    "an unknown token": lambda api: {"X-Auth-Token": "6f1c1a2e-0f5b-4c43-9a8e-2b1d5c3e4f50"},
    "an upper-case spelling of a live token": lambda api: {
        "X-Auth-Token": api.full_session().upper()
    },
    "not a token at all": lambda api: {"X-Auth-Token": "' OR 1=1 --"},
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_session_check_answers_as_the_router_does(
    api: Api, through_router: TestClient, case: str
) -> None:
    # Each side gets a token of its own: a check may change what it checks
    # (an expired session is deleted by the first request that finds it).
    hot: Any = api.get(PROFILE, headers=CASES[case](api))
    routed: Any = through_router.get(PROFILE, headers=CASES[case](api))
    assert visible(hot) == visible(routed)


def test_a_session_check_from_outside_the_allow_list_is_refused_as_by_the_router(
    api: Api, settings: Settings, clock: FakeClock, make_api: Callable[..., Api]
) -> None:
    proxied = make_api(peer="127.0.0.1", trust_forwarded_for=True)
    token = login_from(proxied, "10.0.0.1").json()["session_id"]
    assert restrict(proxied, token, ["10.0.0.0/24"], "10.0.0.1").status_code == 200
    app = create_app(
        replace(settings, trust_forwarded_for=True), clock=clock, background=False, hot_paths=False
    )
    with TestClient(
        app, base_url="http://testserver/api/1.0", client=("127.0.0.1", 50000)
    ) as routed:
        for addr, status in (("10.0.0.9", 200), ("192.0.2.1", 403)):
            headers = {"X-Auth-Token": token, "X-Forwarded-For": addr}
            hot = proxied.get(PROFILE, headers=headers)
            assert hot.status_code == status, hot.text
            assert visible(hot) == visible(routed.get(PROFILE, headers=headers))


def test_the_session_check_echoes_the_request_id_and_says_no_store_as_the_router_does(
    api: Api, through_router: TestClient
) -> None:
    # Answered in front of Observe and NoStore: it adds what they add.
    token = api.full_session()
    for client in (api.http, through_router):
        named = client.get(PROFILE, headers={"X-Auth-Token": token, "X-Request-Id": "rid-7.x"})
        assert named.status_code == 200, named.text
        assert named.headers["x-request-id"] == "rid-7.x"
        assert named.headers["cache-control"] == "no-store"
        refused = client.get(PROFILE, headers={"X-Request-Id": "not an id"})
        assert refused.status_code == 401
        assert re.fullmatch(r"[0-9a-f]{32}", refused.headers["x-request-id"])
        assert refused.headers["cache-control"] == "no-store"


def test_too_many_headers_on_the_session_check_are_refused_as_by_the_router(
    api: Api, through_router: TestClient
) -> None:
    headers = {f"X-Filler-{i}": "x" for i in range(120)} | {"X-Auth-Token": api.full_session()}
    hot, routed = api.get(PROFILE, headers=headers), through_router.get(PROFILE, headers=headers)
    assert hot.status_code == 431, hot.text
    assert visible(hot) == visible(routed)


def test_an_unreadable_session_is_the_500_the_router_gives(
    api: Api, through_router: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    # A stored session this code cannot read (a kind it does not know) is an
    # unexpected error: an ErrorModel 500 on either side, logged by type only.
    token = api.full_session()
    with api.core.store.transaction() as tx:
        tx.conn.execute(text("UPDATE sessions SET kind = 'bogus'"))  # type: ignore[attr-defined]
    caplog.set_level(logging.INFO, logger="quatrix_mfa")
    caplog.clear()
    hot = api.get(PROFILE, headers={"X-Auth-Token": token})
    routed = through_router.get(PROFILE, headers={"X-Auth-Token": token})
    assert hot.status_code == routed.status_code == 500
    assert hot.json() == routed.json() == {"code": -1, "msg": "Internal error"}
    lines = [r for r in caplog.records if r.name == "quatrix_mfa.request"]
    assert [(r.levelname, r.fields["status"]) for r in lines] == [("ERROR", 500)] * 2  # type: ignore[attr-defined]
    # Like every other answer: never cached, and named by the id its log line has.
    assert hot.headers["cache-control"] == routed.headers["cache-control"] == "no-store"
    logged = [r.fields["request_id"] for r in lines]  # type: ignore[attr-defined]
    assert [hot.headers["x-request-id"], routed.headers["x-request-id"]] == logged


# POST /session/login, the second factor ------------------------------------------


def _pending_login(api: Api) -> str:
    login = api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert login.status_code == 207, login.text
    return str(login.headers["X-Auth-Token"])


def _enrolled(api: Api) -> str:
    """2FA on for the admin; its secret."""
    _token, secret, _codes = api.enroll_totp(api.full_session())
    return secret


BODIES: dict[str, dict[str, Any]] = {
    "a wrong code": {"json": {"auth_type": "2FA", "code": "000000"}},
    "a code of the wrong length": {"json": {"auth_type": "2FA", "code": "1234567"}},
    "an unknown factor": {"json": {"auth_type": "SMS", "code": "123456"}},
    "a missing code": {"json": {"auth_type": "2FA"}},
    "a number for a code": {"json": {"auth_type": "2FA", "code": 123456}},
    "an extra field": {"json": {"auth_type": "2FA", "code": "000000", "x": 1}},
    "a non-boolean remember_device": {
        "json": {"auth_type": "2FA", "code": "000000", "remember_device": "yes"}
    },
    "a JSON array": {"json": [1, 2]},
    "broken JSON": {"content": b'{"auth_type": "2FA", ', "ctype": "application/json"},
    "not UTF-8": {"content": b'{"code": "\xff"}', "ctype": "application/json"},
    "an empty body": {"content": b"", "ctype": "application/json"},
    "UTF-16 JSON": {
        "content": '{"auth_type":"2FA","code":"000000"}'.encode("utf-16"),
        "ctype": "application/json",
    },
    "a form": {"content": b"auth_type=2FA&code=000000", "ctype": "text/plain"},
    "JSON without a content type": {"content": b'{"auth_type":"2FA","code":"000000"}'},
    "JSON with a charset": {
        "content": b'{"auth_type":"2FA","code":"000000"}',
        "ctype": "application/json; charset=utf-8",
    },
}


def _post(client: Any, token: str | None, body: dict[str, Any]) -> Any:
    headers = {} if token is None else {"X-Auth-Token": token}
    if "json" in body:
        return client.post("/session/login", json=body["json"], headers=headers)
    if "ctype" in body:
        headers["Content-Type"] = body["ctype"]
    return client.post("/session/login", content=body["content"], headers=headers)


@pytest.mark.parametrize("case", list(BODIES))
def test_a_second_factor_is_answered_as_by_the_router(
    api: Api, through_router: TestClient, case: str
) -> None:
    _enrolled(api)
    hot = _post(api.http, _pending_login(api), BODIES[case])
    routed = _post(through_router, _pending_login(api), BODIES[case])
    assert visible(hot) == visible(routed)
    assert hot.status_code in (400, 401), hot.text


@pytest.mark.parametrize("token", [None, "not-a-token", "6f1c1a2e-0f5b-4c43-9a8e-2b1d5c3e4f50"])
def test_a_second_factor_without_a_live_session_is_refused_as_by_the_router(
    api: Api, through_router: TestClient, token: str | None
) -> None:
    body = BODIES["a wrong code"]
    hot, routed = _post(api.http, token, body), _post(through_router, token, body)
    assert hot.status_code == 401, hot.text
    assert visible(hot) == visible(routed)


def test_a_right_code_opens_the_same_full_session_either_way(
    api: Api, through_router: TestClient
) -> None:
    secret = _enrolled(api)
    api.clock.advance(30)  # enrolling used this step's code
    routed = _post(
        through_router,
        _pending_login(api),
        {"json": {"auth_type": "2FA", "code": api.code(secret)}},
    )
    api.clock.advance(30)  # and the replay guard holds across both edges
    hot = _post(
        api.http, _pending_login(api), {"json": {"auth_type": "2FA", "code": api.code(secret)}}
    )
    assert hot.status_code == routed.status_code == 200, (hot.text, routed.text)
    assert set(hot.headers) == set(routed.headers)
    assert hot.json().keys() == routed.json().keys() == {"session_id"}
    assert api.get(PROFILE, hot.headers["X-Auth-Token"]).status_code == 200
    # Used once: the same code again is the replay it is on every route.
    again = _post(
        api.http, _pending_login(api), {"json": {"auth_type": "2FA", "code": api.code(secret)}}
    )
    assert again.status_code == 401 and again.json()["code"] == 11, again.text
