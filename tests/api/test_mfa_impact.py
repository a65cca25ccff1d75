"""GET /api/1.0/settings/mfa-impact (issue 12, item 2): what forcing 2FA
would do now, for the administrator to see before saving it."""

from __future__ import annotations

from tests.conftest import ADMIN_EMAIL, Api, error
from tests.support.admin import PASSWORD, add_users
from tests.support.http import totp_user

PATH = "/settings/mfa-impact"


def test_the_impact_counts_users_without_2fa_and_their_open_sessions(
    api: Api, admin_token: str
) -> None:
    totp_user(api, admin_token, "tina@example.com")
    people = add_users(api.core, 3, password=True)
    for person in people[:2]:
        api.full_session(person.email, PASSWORD)
    api.full_session(people[0].email, PASSWORD)
    response = api.get(PATH, admin_token)
    assert response.status_code == 200, response.text
    body = response.json()
    # admin + tina + 3; all but tina lack 2FA; the admin's session and 3 of theirs.
    assert (body["users"], body["users_without_2fa"], body["sessions_to_end"]) == (5, 4, 4)
    assert [u["email"] for u in body["first_users"]] == [ADMIN_EMAIL] + [p.email for p in people]
    first = body["first_users"][1]
    assert first == {"id": people[0].id, "email": people[0].email, "name": people[0].name}


def test_an_expired_or_idle_session_is_not_counted(api: Api, admin_token: str) -> None:
    (person,) = add_users(api.core, 1, password=True)
    api.full_session(person.email, PASSWORD)
    api.clock.advance(api.core.sessions.idle_seconds + 1)
    token = api.full_session()
    assert api.get(PATH, token).json()["sessions_to_end"] == 1  # this one only


def test_the_list_stops_at_the_first_thousand(api: Api, admin_token: str) -> None:
    add_users(api.core, 1000)
    body = api.get(PATH, admin_token).json()
    assert body["users_without_2fa"] == 1001
    assert len(body["first_users"]) == 1000


def test_once_2fa_is_forced_saving_it_again_ends_no_session(api: Api, admin_token: str) -> None:
    totp_user(api, admin_token, "tina@example.com")
    admin_2fa, _, _ = api.enroll_totp(admin_token)
    forced = api.post("/settings/set", {"auth_methods": ["2FA"]}, admin_2fa)
    assert forced.status_code == 200, forced.text
    body = api.get(PATH, admin_2fa).json()
    assert body["users_without_2fa"] == 0 and body["sessions_to_end"] == 0


def test_only_an_administrator_may_ask(api: Api, admin_token: str) -> None:
    (person,) = add_users(api.core, 1, password=True)
    error(api.get(PATH, api.full_session(person.email, PASSWORD)), 403, 3)
    error(api.get(PATH), 401, 1)
    error(api.get(PATH, "00000000-0000-4000-8000-000000000000"), 401, 1)
