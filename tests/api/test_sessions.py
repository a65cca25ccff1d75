"""Sessions through the HTTP API: what a pending session may do, token
status, keepalive, logout, expiry (on the fake clock) and the IP allow-list."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from quatrix_mfa.core.bootstrap import bootstrap
from quatrix_mfa.core.model import Step
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, error
from tests.support.encoding import b64
from tests.support.http import INSIDE, OUTSIDE, login_from, restrict

IDLE = 900
MAX_AGE = 12 * 3600
PENDING = 300


def admin_with_totp(api: Api, admin_token: str) -> str:
    """Enroll TOTP on the admin; returns the base32 secret."""
    return api.scenario.enroll_totp(admin_token)[1]


def pending_admin(api: Api) -> str:
    return api.scenario.pending(ADMIN_EMAIL, ADMIN_PASSWORD, Step.TOTP)


# What a pending session may do ---------------------------------------------

PENDING_REFUSED = [
    ("GET", "/profile", None),
    ("GET", "/user", None),
    ("GET", "/settings", None),
    ("GET", "/settings/auth-methods", None),
    ("GET", "/session/keepalive", None),
    ("GET", "/profile/2fa/generate", None),
    (
        "POST",
        "/profile/set-password",
        {"password": b64(ADMIN_PASSWORD), "new_password": b64("a brand new passphrase")},
    ),
    ("POST", "/profile/set-mfa", {"auth_type": "PIN", "code": "4821"}),
    ("POST", "/profile/set-mfa", {"auth_type": "2FA", "code": "123456"}),
    ("POST", "/profile/remove-mfa", {"auth_type": "2FA"}),
    ("POST", "/user/create", {"name": "x", "email": "x@example.com"}),
    ("POST", "/settings/set", {"title": "pending"}),
]


@pytest.mark.parametrize(("method", "path", "body"), PENDING_REFUSED)
def test_pending_session_is_refused_elsewhere(
    api: Api, admin_token: str, method: str, path: str, body: Any
) -> None:
    admin_with_totp(api, admin_token)
    pending = pending_admin(api)
    response = api.get(path, pending) if method == "GET" else api.post(path, body, pending)
    error(response, 401, 10)
    assert api.get("/session/login", pending).status_code == 207
    assert api.login(ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 207  # password unchanged


def test_logout_works_on_a_pending_session(api: Api, admin_token: str) -> None:
    secret = admin_with_totp(api, admin_token)
    pending = pending_admin(api)
    assert api.get("/session/logout", pending).status_code == 200
    error(api.get("/session/login", pending), 401, 1)
    error(
        api.post("/session/login", {"auth_type": "2FA", "code": api.code(secret)}, pending), 401, 1
    )


# GET /session/login with a token --------------------------------------------


def test_token_status_of_full_session_is_200(api: Api, admin_token: str) -> None:
    response = api.get("/session/login", admin_token)
    assert response.status_code == 200, response.text
    assert response.json()["session_id"] == admin_token
    assert response.headers["X-Auth-Token"] == admin_token
    assert "Mfa-Code" not in response.headers


def test_token_status_of_pending_session_is_207_with_mfa_code(api: Api, admin_token: str) -> None:
    admin_with_totp(api, admin_token)
    pending = pending_admin(api)
    response = api.get("/session/login", pending)
    assert response.status_code == 207, response.text
    assert response.headers["Mfa-Code"] == "1"
    assert response.json()["session_id"] == pending


def test_token_status_of_dead_token_is_401(api: Api, admin_token: str) -> None:
    assert api.get("/session/logout", admin_token).status_code == 200
    error(api.get("/session/login", admin_token), 401, 1)


# Keepalive, logout, forged tokens ------------------------------------------


def test_keepalive_answers_200(api: Api, admin_token: str) -> None:
    assert api.get("/session/keepalive", admin_token).status_code == 200


def test_logout_closes_the_session_everywhere(api: Api, admin_token: str) -> None:
    other = api.full_session()
    assert api.get("/session/logout", admin_token).status_code == 200
    error(api.get("/profile", admin_token), 401, 1)
    error(api.get("/session/keepalive", admin_token), 401, 1)
    error(api.get("/session/login", admin_token), 401, 1)
    error(api.get("/user", admin_token), 401, 1)
    error(api.get("/session/logout", admin_token), 401, 1)
    assert api.get("/profile", other).status_code == 200  # only that session closed


@pytest.mark.parametrize(
    "token",
    [
        str(uuid.uuid4()),
        "00000000-0000-0000-0000-000000000000",
        "garbage",
        "",
        "' OR '1'='1",
        "x" * 5000,
    ],
)
def test_forged_tokens_are_not_authenticated(api: Api, token: str) -> None:
    error(api.get("/profile", token), 401, 1)
    error(api.get("/session/keepalive", token), 401, 1)
    error(api.get("/session/login", token), 401, 1)


def test_altered_real_token_is_not_authenticated(api: Api, admin_token: str) -> None:
    last = "0" if admin_token[-1] != "0" else "1"
    error(api.get("/profile", admin_token[:-1] + last), 401, 1)
    assert api.get("/profile", admin_token).status_code == 200


def test_missing_token_is_not_authenticated(api: Api) -> None:
    error(api.get("/profile"), 401, 1)
    error(api.get("/session/keepalive"), 401, 1)
    error(api.get("/session/logout"), 401, 1)


# Expiry on the fake clock ---------------------------------------------------


def test_full_session_idles_out_after_15_minutes(api: Api) -> None:
    alive, dead = api.full_session(), api.full_session()
    api.clock.advance(IDLE - 1)
    assert api.get("/profile", alive).status_code == 200
    api.clock.advance(1)
    error(api.get("/profile", dead), 401, 1)
    error(api.get("/session/keepalive", dead), 401, 1)


def test_idle_timeout_is_configurable(api: Api, make_api: Any) -> None:
    short = make_api(session_idle_seconds=120)
    token = short.full_session()
    api.clock.advance(119)
    assert short.get("/profile", token).status_code == 200
    api.clock.advance(120)
    error(short.get("/profile", token), 401, 1)


@pytest.mark.parametrize("path", ["/session/keepalive", "/profile"])
def test_keepalive_and_any_other_request_extend_an_idle_session(
    api: Api, admin_token: str, path: str
) -> None:
    # DESIGN: a full session expires after 15 minutes *without a request*.
    for _ in range(3):
        api.clock.advance(IDLE - 60)
        assert api.get(path, admin_token).status_code == 200
    api.clock.advance(IDLE - 1)
    assert api.get("/profile", admin_token).status_code == 200
    api.clock.advance(IDLE)
    error(api.get("/profile", admin_token), 401, 1)


def test_session_dies_after_12_hours_even_with_keepalives(api: Api, admin_token: str) -> None:
    elapsed = 0
    while elapsed + 600 < MAX_AGE:
        api.clock.advance(600)
        elapsed += 600
        assert api.get("/session/keepalive", admin_token).status_code == 200, elapsed
    api.clock.advance(MAX_AGE - 1 - elapsed)
    assert api.get("/session/keepalive", admin_token).status_code == 200
    api.clock.advance(1)
    error(api.get("/session/keepalive", admin_token), 401, 1)
    error(api.get("/profile", admin_token), 401, 1)


def test_pending_session_dies_after_5_minutes(api: Api, admin_token: str) -> None:
    secret = admin_with_totp(api, admin_token)
    pending = pending_admin(api)
    api.clock.advance(PENDING - 1)
    assert api.get("/session/login", pending).status_code == 207
    api.clock.advance(1)
    error(
        api.post("/session/login", {"auth_type": "2FA", "code": api.code(secret)}, pending), 401, 1
    )
    error(api.get("/session/login", pending), 401, 1)


def test_session_used_every_50_seconds_stays_alive(api: Api, admin_token: str) -> None:
    for _ in range(30):  # 25 minutes, far past the idle limit
        api.clock.advance(50)
        assert api.get("/profile", admin_token).status_code == 200
    api.clock.advance(IDLE)  # never outlives the idle limit after its last use
    error(api.get("/profile", admin_token), 401, 1)


def test_keepalive_does_not_revive_an_expired_session(api: Api, admin_token: str) -> None:
    api.clock.advance(IDLE)
    error(api.get("/session/keepalive", admin_token), 401, 1)
    api.clock.advance(-IDLE)
    error(api.get("/profile", admin_token), 401, 1)


# IP allow-list --------------------------------------------------------------


@pytest.fixture
def proxied(api: Api, make_api: Any) -> Api:
    """The app behind a trusted proxy (the admin already exists: ``api`` bootstrapped it)."""
    web: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True)
    token = login_from(web, INSIDE).json()["session_id"]
    response = restrict(web, token, ["10.0.0.0/24"], INSIDE)
    assert response.status_code == 200, response.text
    assert "IP" in response.json()["auth_methods"]
    return web


def test_login_from_outside_the_allow_list_is_forbidden(proxied: Api) -> None:
    response = login_from(proxied, OUTSIDE)
    error(response, 403, 20)
    assert "X-Auth-Token" not in response.headers


def test_login_from_inside_the_allow_list_works(proxied: Api) -> None:
    response = login_from(proxied, "10.0.0.200")
    assert response.status_code == 200, response.text


def test_wrong_password_from_outside_is_401_not_403(proxied: Api) -> None:
    error(login_from(proxied, OUTSIDE, ADMIN_EMAIL, "not the password"), 401, 1)
    error(login_from(proxied, OUTSIDE, "nobody@example.com", "not the password"), 401, 1)


@pytest.mark.parametrize(
    ("entry", "inside", "outside"),
    [
        ("10.0.0.5", "10.0.0.5", "10.0.0.6"),
        ("10.0.0.1-20", "10.0.0.20", "10.0.0.21"),
        ("10.0.0.0\\24", "10.0.0.99", "10.0.1.1"),
    ],
)
def test_allow_list_formats(api: Api, make_api: Any, entry: str, inside: str, outside: str) -> None:
    web: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True)
    token = login_from(web, INSIDE).json()["session_id"]
    assert restrict(web, token, [entry], INSIDE).status_code == 200
    assert login_from(web, inside).status_code == 200
    error(login_from(web, outside), 403, 20)


def test_allow_list_that_excludes_the_admin_is_refused(api: Api, make_api: Any) -> None:
    web: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True)
    token = login_from(web, INSIDE).json()["session_id"]
    response = restrict(web, token, ["192.0.2.0/24"], INSIDE)
    error(response, 400, 2)
    assert "ip_whitelist" in response.json()["details"]
    assert "IP" not in web.get("/settings", token).json().get("auth_methods", [])
    assert login_from(web, INSIDE).status_code == 200


def test_allow_list_is_refused_when_the_client_address_is_not_an_ip(
    api: Api, admin_token: str
) -> None:
    # Without a trusted proxy the test client's address is "testclient": no
    # allow-list can contain it, so enabling one would lock everyone out. The
    # guard refuses it and logins keep working.
    for whitelist in (["0.0.0.0/0"], ["::/0"], ["10.0.0.0/8"]):
        response = restrict(api, admin_token, whitelist, "10.0.0.5")
        error(response, 400, 2)
        assert "ip_whitelist" in response.json()["details"]
    assert api.login(ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 200


def test_non_ip_client_address_is_never_inside_the_allow_list(api: Api, proxied: Api) -> None:
    # What the guard above prevents: once an allow-list is on, a client whose
    # address is not an IP ("testclient", no trusted proxy) cannot log in.
    error(api.login(ADMIN_EMAIL, ADMIN_PASSWORD), 403, 20)
    assert login_from(proxied, INSIDE).status_code == 200


def test_lifting_the_allow_list_lets_outside_logins_in(proxied: Api) -> None:
    token = login_from(proxied, INSIDE).json()["session_id"]
    response = proxied.post(
        "/settings/set", {"auth_methods": []}, token, headers={"X-Forwarded-For": INSIDE}
    )
    assert response.status_code == 200, response.text
    assert login_from(proxied, OUTSIDE).status_code == 200


def test_a_session_used_more_often_than_its_short_idle_time_stays_open(make_api: Any) -> None:
    # Idle time counts from the stored last-seen time, written at most once a
    # minute: with a 60 s idle time a session used every 20 s had ended 60 s
    # after it opened. Now written at least every tenth of the idle time.
    short = make_api(session_idle_seconds=60)
    bootstrap(short.core, ADMIN_EMAIL, "Example", ADMIN_PASSWORD)
    token = short.full_session()
    for _ in range(12):  # four minutes of use
        short.clock.advance(20)
        assert short.get("/profile", token).status_code == 200
    short.clock.advance(59)
    assert short.get("/profile", token).status_code == 200
    short.clock.advance(60)
    error(short.get("/profile", token), 401, 1)
