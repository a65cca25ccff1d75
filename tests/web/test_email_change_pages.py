"""The pages of the mailed links when one email is in several accounts
(issue 17, item 7): confirming a changed email from the new address, and the
set-password page refusing an address another user already signs in with."""

from __future__ import annotations

from typing import Any

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support import outbox
from tests.support.encoding import basic
from tests.support.scenario import FOREIGN_EMAIL, foreign_admin
from tests.web.conftest import SITE, Site, csrf_of

MEMBER = "member@example.com"
PASSWORD = "member password 123"
NEW = "moved@example.com"
TAKEN = "already signs in to another organisation"


def api_call(site: Site, path: str, body: dict[str, Any]) -> Any:
    """An API call of the admin's, from the same client."""
    auth = {"Authorization": basic(ADMIN_EMAIL, ADMIN_PASSWORD)}
    login = site.http.get("/api/1.0/session/login", headers=auth)
    return site.http.post(
        f"/api/1.0{path}", json=body, headers={"X-Auth-Token": login.json()["session_id"]}
    )


def member_with_password(site: Site) -> str:
    created = api_call(site, "/user/create", {"name": "Member", "email": MEMBER})
    assert created.status_code == 201, created.text
    reset_id = outbox.latest_reset_id(site.core, MEMBER)
    set_it = site.http.post(
        f"/api/1.0/reset-password/reset/{reset_id}", json={"password": PASSWORD}
    )
    assert set_it.status_code == 200, set_it.text
    return str(created.json()["id"])


def test_the_mailed_confirmation_asks_first_then_changes_the_email(site: Site) -> None:
    user_id = member_with_password(site)
    assert api_call(site, "/user/edit", {"ids": [user_id], "email": NEW}).status_code == 200
    path = f"/confirm-email/{outbox.latest_confirm_id(site.core, NEW)}"
    page = site.get(path)
    assert page.status_code == 200 and NEW in page.text and 'name="csrf_token"' in page.text
    assert site.sign_in(MEMBER, PASSWORD).status_code == 303  # the GET changed nothing
    forged = site.http.post(path, data={}, headers={"Origin": SITE})
    assert forged.status_code == 403
    done = site.submit(path, path, {})
    assert done.status_code == 200 and "Your email was changed" in done.text
    with site.core.store.transaction(write=False) as tx:
        user = tx.users.get(user_id)
    assert user is not None and user.email == NEW
    again = site.get(path)
    assert again.status_code == 404 and "no longer works" in again.text
    assert site.get("/confirm-email/not-a-uuid").status_code == 404


def test_the_set_password_page_refuses_an_address_another_user_signs_in_with(
    site: Site,
) -> None:
    foreign_admin(site.core, site.clock)
    created = api_call(site, "/user/create", {"name": "Twin", "email": FOREIGN_EMAIL})
    assert created.status_code == 201, created.text
    path = outbox.latest_link(site.core, FOREIGN_EMAIL).removeprefix(SITE)
    page = site.get(path)
    assert page.status_code == 400 and TAKEN in page.text and "new_password" not in page.text
    # A form posted anyway (opened before the address was taken) is refused too.
    data = {"new_password": "a fine new passphrase", "confirm_password": "a fine new passphrase"}
    token = csrf_of(site.get("/forgot-password"))
    headers = {"Origin": SITE, "Sec-Fetch-Site": "same-origin"}
    refused = site.http.post(path, data={"csrf_token": token, **data}, headers=headers)
    assert refused.status_code == 400 and TAKEN in refused.text
    with site.core.store.transaction(write=False) as tx:
        twin = tx.users.get(created.json()["id"])
    assert twin is not None and twin.password_hash is None
