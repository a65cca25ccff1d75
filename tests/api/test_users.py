"""User administration over HTTP: who may call it, list/metadata/create/edit/delete,
and tenancy (another account's users are unknown ids to this account's admin)."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from typing import Any

import pytest

from quatrix_mfa.core.model import Account, User
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, alive, error
from tests.support import outbox
from tests.support.scenario import FOREIGN_EMAIL, FOREIGN_PASSWORD

EMAIL = "member@example.com"
PASSWORD = "member password 123"
OTHER_EMAIL = "second@example.com"
_LINK = re.compile(r"https://mfa\.example\.com/reset-password/([0-9a-f-]{36})$")


def snapshot(api: Api) -> list[tuple[Account | None, list[User]]]:
    """Both accounts and all their users as stored, to prove a refused call changed nothing."""
    with api.core.store.transaction(write=False) as tx:
        first = tx.accounts.first()
        assert first is not None
        account_ids = [first.id]
        outsider = tx.users.by_email(FOREIGN_EMAIL)
        if outsider is not None:
            account_ids.append(outsider.account_id)
        return [
            (tx.accounts.get(a), sorted(tx.users.in_account(a), key=lambda u: u.id))
            for a in account_ids
        ]


@pytest.fixture
def member(api: Api, admin_token: str) -> str:
    return api.create_user(admin_token, EMAIL, PASSWORD)


# Who may call ----------------------------------------------------------------

ADMIN_CALLS = [
    ("GET", "/user", None),
    ("GET", "/user/metadata/{admin}", None),
    ("POST", "/user/create", {"name": "Intruder", "email": "intruder@example.com"}),
    ("POST", "/user/edit", {"ids": ["{admin}"], "name": "Hijacked", "super_admin": "N"}),
    ("POST", "/user/delete", {"ids": ["{admin}"]}),
    ("POST", "/user/set-mfa", {"ids": ["{admin}"], "auth_type": "PIN", "code": "1234"}),
    ("POST", "/user/remove-mfa", {"ids": ["{admin}"], "auth_type": "PIN"}),
    ("POST", "/user/reset-mfa", {"ids": ["{admin}"], "auth_type": "2FA"}),
    ("GET", "/settings", None),
    ("POST", "/settings/set", {"title": "Hijacked", "auth_methods": ["2FA"]}),
    ("GET", "/settings/auth-methods", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS)
def test_a_non_admin_is_refused_every_admin_endpoint(
    api: Api, admin_token: str, member: str, method: str, path: str, body: Any
) -> None:
    admin_id = api.get("/profile", admin_token).json()["id"]
    api.post("/user/set-mfa", {"ids": [admin_id], "auth_type": "PIN", "code": "9999"}, admin_token)
    token = api.full_session(EMAIL, PASSWORD)
    before = snapshot(api)
    path = path.replace("{admin}", admin_id)
    body = json.loads(json.dumps(body).replace("{admin}", admin_id)) if body else None
    response = api.get(path, token) if method == "GET" else api.post(path, body, token)
    error(response, 403, 3)
    assert snapshot(api) == before
    assert outbox.bodies(api.core, "intruder@example.com") == []


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS)
def test_admin_endpoints_need_a_full_session(
    api: Api, admin_token: str, method: str, path: str, body: Any
) -> None:
    api.enroll_totp(admin_token)
    pending = api.login(ADMIN_EMAIL, ADMIN_PASSWORD).json()["session_id"]
    admin_id = str(uuid.uuid4())
    path = path.replace("{admin}", admin_id)
    body = json.loads(json.dumps(body).replace("{admin}", admin_id)) if body else None
    before = snapshot(api)
    response = api.get(path, pending) if method == "GET" else api.post(path, body, pending)
    error(response, 401, 10)
    assert snapshot(api) == before


# List and metadata -------------------------------------------------------------


def test_user_list_holds_only_the_callers_account(api: Api, admin_token: str, member: str) -> None:
    outsider = api.scenario.foreign_admin()
    listed = api.get("/user", admin_token).json()
    assert sorted(u["email"] for u in listed) == sorted([ADMIN_EMAIL, EMAIL])
    assert outsider.id not in {u["id"] for u in listed}
    theirs = api.get("/user", api.full_session(FOREIGN_EMAIL, FOREIGN_PASSWORD)).json()
    assert [u["email"] for u in theirs] == [FOREIGN_EMAIL]


def test_user_metadata_of_unknown_and_malformed_ids(
    api: Api, admin_token: str, member: str
) -> None:
    found = api.get(f"/user/metadata/{member}", admin_token)
    assert found.status_code == 200 and found.json()["email"] == EMAIL
    error(api.get(f"/user/metadata/{uuid.uuid4()}", admin_token), 404, 4)
    error(api.get("/user/metadata/not-a-uuid", admin_token), 400, 2)
    error(api.get(f"/user/metadata/{api.scenario.foreign_admin().id}", admin_token), 404, 4)


# Create ------------------------------------------------------------------------


def test_create_user_answers_201_and_mails_a_working_password_link(
    api: Api, admin_token: str
) -> None:
    response = api.post("/user/create", {"name": "New Person", "email": EMAIL}, admin_token)
    assert response.status_code == 201, response.text
    user = response.json()
    assert str(uuid.UUID(user["id"])) == user["id"]
    assert (user["name"], user["email"], user["super_admin"]) == ("New Person", EMAIL, "N")
    assert user["status"] == "A"
    assert user["auth_methods"] == [] and user["forced_auth"] == []
    assert api.get(f"/user/metadata/{user['id']}", admin_token).json()["email"] == EMAIL
    assert api.login(EMAIL, "").status_code == 401  # no password until the link is used

    (body,) = outbox.bodies(api.core, EMAIL)
    links = [m for line in body.splitlines() if (m := _LINK.fullmatch(line.strip()))]
    assert len(links) == 1
    reset_id = links[0].group(1)
    assert str(uuid.UUID(reset_id)) == reset_id
    page = api.http.get(f"http://testserver/reset-password/{reset_id}")
    assert page.status_code == 200 and f'action="/reset-password/{reset_id}"' in page.text
    assert api.get(f"/reset-password/metadata/{reset_id}").status_code == 200
    assert api.post(f"/reset-password/reset/{reset_id}", {"password": PASSWORD}).status_code == 200
    assert api.login(EMAIL, PASSWORD).status_code == 200


def test_create_an_administrator(api: Api, admin_token: str) -> None:
    body = {"name": "Boss", "email": OTHER_EMAIL, "super_admin": "Y"}
    assert api.post("/user/create", body, admin_token).json()["super_admin"] == "Y"


def test_create_user_with_an_email_of_the_own_account_in_any_case_is_refused(
    api: Api, admin_token: str, member: str
) -> None:
    # Emails are unique per account; another account's emails answer as free
    # ones do (tests/attacks/test_email_existence.py).
    api.scenario.foreign_admin()
    before = snapshot(api)
    for taken in (EMAIL.upper(), "Member@Example.COM", ADMIN_EMAIL):
        response = api.post("/user/create", {"name": "Twin", "email": taken}, admin_token)
        error(response, 400, 31)
    assert snapshot(api) == before
    assert len(outbox.bodies(api.core, EMAIL)) == 1


@pytest.mark.parametrize(
    "bad", ["not-an-email", "a@b", "", "two@@example.com", "sp ace@example.com"]
)
def test_create_user_with_an_invalid_email_is_refused(api: Api, admin_token: str, bad: str) -> None:
    before = snapshot(api)
    response = api.post("/user/create", {"name": "Nobody", "email": bad}, admin_token)
    assert "email" in error(response, 400, 2)["details"]
    assert snapshot(api) == before


# Edit --------------------------------------------------------------------------


def test_edit_changes_name_status_and_role_of_many_users(
    api: Api, admin_token: str, member: str
) -> None:
    second = api.create_user(admin_token, OTHER_EMAIL, PASSWORD)
    body = {"ids": [member, second], "name": "Renamed", "super_admin": "Y", "language": "fra"}
    response = api.post("/user/edit", body, admin_token)
    assert response.status_code == 200, response.text
    edited = {u["id"]: u for u in response.json()}
    assert set(edited) == {member, second}
    for user_id in (member, second):
        meta = api.get(f"/user/metadata/{user_id}", admin_token).json()
        assert (meta["name"], meta["super_admin"], meta["language"]) == ("Renamed", "Y", "fra")
        assert edited[user_id]["name"] == "Renamed"
    assert api.get("/user", api.full_session(EMAIL, PASSWORD)).status_code == 200
    assert api.get(f"/user/metadata/{member}", admin_token).json()["email"] == EMAIL


def test_edit_email_is_for_one_user_at_a_time(api: Api, admin_token: str, member: str) -> None:
    second = api.create_user(admin_token, OTHER_EMAIL, PASSWORD)
    before = snapshot(api)
    body = {"ids": [member, second], "email": "third@example.com", "name": "Both"}
    assert "email" in error(api.post("/user/edit", body, admin_token), 400, 2)["details"]
    assert snapshot(api) == before


def test_edit_email_of_an_invited_user_applies_at_once_and_invites_the_new_address(
    api: Api, admin_token: str
) -> None:
    # No password yet: nobody signs in with the address, so nothing to confirm.
    body = {"name": "Typo", "email": "jon.smith@example.com"}
    invited = api.post("/user/create", body, admin_token).json()["id"]
    response = api.post("/user/edit", {"ids": [invited], "email": EMAIL}, admin_token)
    assert response.status_code == 200, response.text
    assert response.json()[0]["email"] == EMAIL
    assert any(EMAIL in text for text in outbox.bodies(api.core, "jon.smith@example.com"))
    reset_id = outbox.latest_reset_id(api.core, EMAIL)
    assert api.post(f"/reset-password/reset/{reset_id}", {"password": PASSWORD}).status_code == 200
    assert api.login(EMAIL, PASSWORD).status_code == 200


def test_edit_email_to_one_of_the_own_account_is_refused(
    api: Api, admin_token: str, member: str
) -> None:
    api.scenario.foreign_admin()
    before = snapshot(api)
    for taken in (ADMIN_EMAIL.upper(), ADMIN_EMAIL):
        error(api.post("/user/edit", {"ids": [member], "email": taken}, admin_token), 400, 31)
    assert snapshot(api) == before


def test_disabling_a_user_closes_their_sessions(api: Api, admin_token: str, member: str) -> None:
    sessions = [api.full_session(EMAIL, PASSWORD), api.full_session(EMAIL, PASSWORD)]
    response = api.post("/user/edit", {"ids": [member], "status": "D"}, admin_token)
    assert response.status_code == 200 and response.json()[0]["status"] == "D"
    assert not any(alive(api, s) for s in sessions)
    assert api.login(EMAIL, PASSWORD).status_code == 401
    assert alive(api, admin_token)
    assert api.post("/user/edit", {"ids": [member], "status": "A"}, admin_token).status_code == 200
    assert api.login(EMAIL, PASSWORD).status_code == 200


def test_edit_cannot_leave_the_account_without_an_active_admin(
    api: Api, admin_token: str, member: str
) -> None:
    admin_id = api.get("/profile", admin_token).json()["id"]
    before = snapshot(api)
    for change in ({"super_admin": "N"}, {"status": "D"}):
        error(api.post("/user/edit", {"ids": [admin_id, member], **change}, admin_token), 400, 2)
    assert snapshot(api) == before
    assert alive(api, admin_token)

    # A disabled administrator does not count.
    promote = {"ids": [member], "super_admin": "Y", "status": "D"}
    assert api.post("/user/edit", promote, admin_token).status_code == 200
    error(api.post("/user/edit", {"ids": [admin_id], "super_admin": "N"}, admin_token), 400, 2)
    assert api.post("/user/edit", {"ids": [member], "status": "A"}, admin_token).status_code == 200
    assert (
        api.post("/user/edit", {"ids": [admin_id], "super_admin": "N"}, admin_token).status_code
        == 200
    )
    error(api.get("/user", admin_token), 403, 3)


# Delete ------------------------------------------------------------------------


def test_delete_answers_202_and_the_user_is_gone(api: Api, admin_token: str, member: str) -> None:
    session = api.full_session(EMAIL, PASSWORD)
    response = api.post("/user/delete", {"ids": [member]}, admin_token)
    assert response.status_code == 202, response.text
    assert str(uuid.UUID(response.json()["job_id"])) == response.json()["job_id"]
    assert not alive(api, session)
    assert api.login(EMAIL, PASSWORD).status_code == 401
    error(api.get(f"/user/metadata/{member}", admin_token), 404, 4)
    assert [u["email"] for u in api.get("/user", admin_token).json()] == [ADMIN_EMAIL]


def test_an_admin_cannot_delete_themself(api: Api, admin_token: str, member: str) -> None:
    admin_id = api.get("/profile", admin_token).json()["id"]
    before = snapshot(api)
    response = api.post("/user/delete", {"ids": [member, admin_id]}, admin_token)
    assert admin_id in error(response, 400, 2)["details"]["ids"]
    assert snapshot(api) == before
    assert api.login(EMAIL, PASSWORD).status_code == 200


def test_delete_with_an_unknown_id_deletes_nothing(api: Api, admin_token: str, member: str) -> None:
    unknown = str(uuid.uuid4())
    before = snapshot(api)
    response = api.post("/user/delete", {"ids": [member, unknown]}, admin_token)
    assert error(response, 400, 2)["details"] == {"ids": [unknown]}
    assert snapshot(api) == before
    assert api.login(EMAIL, PASSWORD).status_code == 200


# Tenancy -----------------------------------------------------------------------

FOREIGN_CALLS = [
    ("/user/edit", {"name": "Pwned", "status": "D", "super_admin": "N"}),
    ("/user/delete", {}),
    ("/user/set-mfa", {"auth_type": "2FA", "code": "000000"}),
    ("/user/set-mfa", {"auth_type": "PIN", "code": "1234"}),
    ("/user/remove-mfa", {"auth_type": "2FA"}),
    ("/user/remove-mfa", {"auth_type": "PIN"}),
    ("/user/reset-mfa", {"auth_type": "2FA"}),
]


@pytest.mark.parametrize(("path", "fields"), FOREIGN_CALLS)
def test_another_accounts_user_is_an_unknown_id(
    api: Api, admin_token: str, member: str, path: str, fields: dict[str, Any]
) -> None:
    outsider = api.scenario.foreign_admin()
    their_session = api.full_session(FOREIGN_EMAIL, FOREIGN_PASSWORD)
    mine = api.full_session(EMAIL, PASSWORD)
    before = snapshot(api)
    for ids in ([outsider.id], [member, outsider.id]):
        response = api.post(path, {"ids": ids, **fields}, admin_token)
        assert error(response, 400, 2)["details"] == {"ids": [outsider.id]}
    assert snapshot(api) == before
    assert alive(api, their_session) and alive(api, mine)
    assert api.login(FOREIGN_EMAIL, FOREIGN_PASSWORD).status_code == 200
    error(api.get(f"/user/metadata/{outsider.id}", admin_token), 404, 4)


# Audit -------------------------------------------------------------------------


def test_admin_actions_are_audited_without_secrets(api: Api, admin_token: str) -> None:
    admin_id = api.get("/profile", admin_token).json()["id"]
    user_id = api.create_user(admin_token, EMAIL, PASSWORD)
    (link_mail,) = outbox.bodies(api.core, EMAIL)
    reset_id = link_mail.split("/reset-password/")[1].split()[0]
    assert (
        api.post("/user/edit", {"ids": [user_id], "name": "Edited"}, admin_token).status_code == 200
    )
    pin = {"ids": [user_id], "auth_type": "PIN", "code": "31415926"}
    assert api.post("/user/set-mfa", pin, admin_token).status_code == 200
    assert api.post("/user/delete", {"ids": [user_id]}, admin_token).status_code == 202

    with api.core.store.transaction(write=False) as tx:
        rows = tx.audit.list(target_id=user_id)
        everything = tx.audit.list(limit=100_000)
    by_admin = {(r.event, r.outcome) for r in rows if r.actor_id == admin_id}
    for event in ("admin.user_created", "admin.user_edited", "factor.set", "admin.user_deleted"):
        assert (event, "success") in by_admin, event
    text = "\n".join(json.dumps(dataclasses.asdict(r), default=str) for r in everything)
    for secret in ("31415926", PASSWORD, ADMIN_PASSWORD, reset_id, admin_token):
        assert secret not in text
