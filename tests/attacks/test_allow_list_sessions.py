"""Attack: using a session from outside the account's IP allow-list.

The allow-list (DESIGN.md, "Login"; code 20) says from where the account may
be used. Fixed: it was checked only at the password step, so turning it on
closed no session, a session opened outside the list (or a stolen token)
kept working for ``/profile``, keepalive and admin calls for up to 12 hours,
and a login begun inside the list finished its second factor from outside.
Now every request a session makes is checked, and a new or narrowed list
closes the sessions opened outside it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, error
from tests.support.http import INSIDE, OUTSIDE, login_from, restrict, totp_user
from tests.support.scenario import PASSWORD

USER = "ursula@example.com"
USER_PASSWORD = "ursula's long passphrase"


@pytest.fixture
def web(api: Api, make_api: Any) -> Api:
    """The service behind a trusted proxy (``api`` created the administrator)."""
    built: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True)
    return built


def session_from(
    web: Api, addr: str, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD
) -> str:
    response = login_from(web, addr, email, password)
    assert response.status_code == 200, response.text
    return str(response.json()["session_id"])


def calls(web: Api, token: str, addr: str) -> dict[str, int]:
    """What a session gets from ``addr`` on a read, a keepalive, an admin call
    and the status of the session itself."""
    headers = {"X-Forwarded-For": addr}
    return {
        path: web.get(path, token, headers=headers).status_code
        for path in ("/profile", "/session/keepalive", "/user", "/session/login")
    }


def test_a_session_is_refused_on_every_request_from_outside_the_list(web: Api) -> None:
    admin = session_from(web, INSIDE)
    assert restrict(web, admin, ["10.0.0.0/24"], INSIDE).status_code == 200
    for path in ("/profile", "/session/keepalive", "/user"):
        error(web.get(path, admin, headers={"X-Forwarded-For": OUTSIDE}), 403, 20)
    assert set(calls(web, admin, OUTSIDE).values()) == {403}
    # Refused, not closed: from inside the same session still works.
    assert set(calls(web, admin, INSIDE).values()) == {200}


def test_a_new_list_closes_the_sessions_opened_outside_it(api: Api, web: Api) -> None:
    admin = session_from(web, INSIDE)
    api.create_user(admin, USER, USER_PASSWORD)
    user_outside = session_from(web, OUTSIDE, USER, USER_PASSWORD)
    user_inside = session_from(web, "10.0.0.77", USER, USER_PASSWORD)
    admin_outside = session_from(web, OUTSIDE)
    assert restrict(web, admin, ["10.0.0.0/24"], INSIDE).status_code == 200
    # Closed (401), not merely refused from outside (403): even from inside.
    error(web.get("/profile", user_outside, headers={"X-Forwarded-For": INSIDE}), 401, 1)
    error(web.get("/profile", admin_outside, headers={"X-Forwarded-For": INSIDE}), 401, 1)
    assert web.get("/profile", user_inside, headers={"X-Forwarded-For": INSIDE}).status_code == 200
    assert web.get("/profile", admin, headers={"X-Forwarded-For": INSIDE}).status_code == 200


def test_narrowing_the_list_closes_the_sessions_it_no_longer_holds(api: Api, web: Api) -> None:
    admin = session_from(web, INSIDE)
    api.create_user(admin, USER, USER_PASSWORD)
    assert restrict(web, admin, ["10.0.0.0/24"], INSIDE).status_code == 200
    user = session_from(web, "10.0.0.200", USER, USER_PASSWORD)
    assert restrict(web, admin, ["10.0.0.0/25"], INSIDE).status_code == 200
    error(web.get("/profile", user, headers={"X-Forwarded-For": INSIDE}), 401, 1)


def test_a_login_begun_inside_cannot_finish_its_second_factor_outside(api: Api, web: Api) -> None:
    admin = session_from(web, INSIDE)
    _, secret, _ = totp_user(api, admin, USER)
    assert restrict(web, admin, ["10.0.0.0/24"], INSIDE).status_code == 200
    pending = login_from(web, INSIDE, USER, PASSWORD)
    assert pending.status_code == 207, pending.text
    token = pending.json()["session_id"]
    body = {"auth_type": "2FA", "code": api.code(secret)}
    error(web.post("/session/login", body, token, headers={"X-Forwarded-For": OUTSIDE}), 403, 20)
    # Nothing was spent: the same code finishes the login from inside.
    finished = web.post("/session/login", body, token, headers={"X-Forwarded-For": INSIDE})
    assert finished.status_code == 200, finished.text
