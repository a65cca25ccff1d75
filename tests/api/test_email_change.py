"""A changed email of a user who signs in waits for the new address to confirm
it (issue 17, item 7): until then the old email keeps working; the link is
single-use and expires; an address another user signs in with by then is
refused (code 31) and nothing changes."""

from __future__ import annotations

from quatrix_mfa.core import audit
from tests.conftest import Api, alive, error
from tests.support import outbox
from tests.support.scenario import FOREIGN_EMAIL, FOREIGN_PASSWORD

EMAIL = "member@example.com"
PASSWORD = "member password 123"
NEW = "moved@example.com"


def member(api: Api, admin_token: str) -> str:
    return api.create_user(admin_token, EMAIL, PASSWORD)


def change(api: Api, admin_token: str, user_id: str, email: str = NEW) -> str:
    """Edit the user's email; the id of the confirmation link mailed to ``email``."""
    response = api.post("/user/edit", {"ids": [user_id], "email": email}, admin_token)
    assert response.status_code == 200, response.text
    return outbox.latest_confirm_id(api.core, email)


def confirm(api: Api, link_id: str) -> object:
    return api.post(f"/confirm-email/{link_id}")


def test_old_email_keeps_working_until_the_new_address_confirms(api: Api, admin_token: str) -> None:
    user_id = member(api, admin_token)
    response = api.post("/user/edit", {"ids": [user_id], "email": NEW}, admin_token)
    assert response.status_code == 200, response.text
    assert response.json()[0]["email"] == EMAIL  # the answer shows the email in force
    assert api.get(f"/user/metadata/{user_id}", admin_token).json()["email"] == EMAIL
    assert api.login(EMAIL, PASSWORD).status_code == 200
    assert api.login(NEW, PASSWORD).status_code == 401
    (notice,) = [t for t in outbox.texts(api.core, EMAIL) if "change" in t.lower()]
    assert NEW in notice and "/confirm-email/" not in notice  # the old address gets no link
    assert outbox.latest_confirm_id(api.core, NEW)


def test_confirming_switches_the_email_closes_sessions_and_revokes_links(
    api: Api, admin_token: str
) -> None:
    user_id = member(api, admin_token)
    session = api.full_session(EMAIL, PASSWORD)
    link_id = change(api, admin_token, user_id)
    api.clock.advance(120)
    api.post("/reset-password/request", {"email": [EMAIL]})
    reset_id = outbox.latest_reset_id(api.core, EMAIL)
    response = confirm(api, link_id)
    assert response.status_code == 200 and response.json() == {"status": "success"}
    assert api.login(NEW, PASSWORD).status_code == 200
    assert api.login(EMAIL, PASSWORD).status_code == 401
    assert not alive(api, session)  # the sign-in identity changed
    assert api.get(f"/reset-password/metadata/{reset_id}").status_code == 401
    assert api.get(f"/user/metadata/{user_id}", admin_token).json()["email"] == NEW
    assert any(NEW in t and "is now" in t for t in outbox.texts(api.core, EMAIL))
    with api.core.store.transaction(write=False) as tx:
        events = [e.event for e in tx.audit.list(user_id)]
    assert audit.EMAIL_CHANGE_REQUESTED in events and audit.EMAIL_CHANGED in events


def test_confirmation_link_works_once(api: Api, admin_token: str) -> None:
    link_id = change(api, admin_token, member(api, admin_token))
    assert confirm(api, link_id).status_code == 200
    error(confirm(api, link_id), 401, 1)


def test_expired_confirmation_link_is_refused_and_changes_nothing(
    api: Api, admin_token: str
) -> None:
    user_id = member(api, admin_token)
    link_id = change(api, admin_token, user_id)
    api.clock.advance(api.core.links.email_change_seconds + 1)
    error(confirm(api, link_id), 401, 1)
    fresh_admin = api.full_session()  # the first one expired meanwhile
    assert api.get(f"/user/metadata/{user_id}", fresh_admin).json()["email"] == EMAIL
    assert api.login(EMAIL, PASSWORD).status_code == 200


def test_address_taken_for_sign_in_meanwhile_is_refused_and_nothing_changes(
    api: Api, admin_token: str
) -> None:
    user_id = member(api, admin_token)
    api.scenario.foreign_admin()
    link_id = change(api, admin_token, user_id)
    # Meanwhile another account's user comes to sign in with that address.
    foreign_token = api.full_session(FOREIGN_EMAIL, FOREIGN_PASSWORD)
    api.scenario.create_user(foreign_token, NEW, "someone else's password")
    error(confirm(api, link_id), 400, 31)
    assert api.get(f"/user/metadata/{user_id}", admin_token).json()["email"] == EMAIL
    assert api.login(EMAIL, PASSWORD).status_code == 200
    assert api.login(NEW, "someone else's password").status_code == 200
    error(confirm(api, link_id), 400, 31)  # still unused: refused for the same reason


def test_a_new_change_replaces_the_pending_one(api: Api, admin_token: str) -> None:
    user_id = member(api, admin_token)
    first = change(api, admin_token, user_id)
    second = change(api, admin_token, user_id, "again@example.com")
    error(confirm(api, first), 401, 1)
    assert confirm(api, second).status_code == 200
    assert api.login("again@example.com", PASSWORD).status_code == 200


def test_setting_the_email_back_cancels_the_pending_change(api: Api, admin_token: str) -> None:
    user_id = member(api, admin_token)
    link_id = change(api, admin_token, user_id)
    back = api.post("/user/edit", {"ids": [user_id], "email": EMAIL}, admin_token)
    assert back.status_code == 200
    error(confirm(api, link_id), 401, 1)


def test_confirmation_id_is_no_password_link_and_a_bad_id_is_a_parameter_error(
    api: Api, admin_token: str
) -> None:
    link_id = change(api, admin_token, member(api, admin_token))
    body = {"password": "a brand new password 1"}
    error(api.post(f"/reset-password/reset/{link_id}", body), 401, 1)
    error(confirm(api, "not-a-uuid"), 400, 2)
    reset_id = outbox.latest_reset_id(api.core, EMAIL)  # the invitation, used
    error(confirm(api, reset_id), 401, 1)
