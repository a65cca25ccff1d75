"""Attack: a password link that outlives what it was issued for.

A password-set link is a bearer credential for one user at one address. The
review found (issue 17, defect 1) that it outlived both: an administrator who
created ``jon.smith@`` by mistake and corrected it to ``john.smith@`` left the
link mailed to the wrong address working, and where the account forces 2FA
its holder then enrolled their own TOTP on the pending session, a full
takeover; the links of a disabled user worked too. Now a change of email,
disabling or deleting a user revokes every outstanding link of theirs, and
redeeming re-checks that the user is active and that the link went to the
email the user has now, also in the write that follows the slow hash.
"""

from __future__ import annotations

from typing import Any

from quatrix_mfa.core.context import Core
from tests.conftest import Api, error, latest_link

MISTYPED = "jon.smith@example.com"
CORRECT = "john.smith@example.com"
ATTACKER_PASSWORD = "attacker chosen passphrase"


def link_id(core: Core, email: str) -> str:
    return latest_link(core, email).rsplit("/", 1)[1]


def create(api: Api, admin_token: str, email: str) -> str:
    response = api.post("/user/create", {"name": "John Smith", "email": email}, admin_token)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def edit(api: Api, admin_token: str, user_id: str, **changes: Any) -> None:
    response = api.post("/user/edit", {"ids": [user_id], **changes}, admin_token)
    assert response.status_code == 200, response.text


def assert_dead(api: Api, reset_id: str) -> None:
    """The link neither shows nor sets a password (401 code 1, as any unknown link)."""
    error(api.get(f"/reset-password/metadata/{reset_id}"), 401, 1)
    body = {"password": ATTACKER_PASSWORD}
    error(api.post(f"/reset-password/reset/{reset_id}", body), 401, 1)


def test_link_mailed_to_a_mistyped_email_dies_when_the_admin_corrects_it(
    api: Api, admin_token: str
) -> None:
    """The review's takeover: the mistyped mailbox's holder sets the password and,
    the account forcing 2FA, would enroll their own TOTP on the way in."""
    user_id = create(api, admin_token, MISTYPED)
    stolen = link_id(api.core, MISTYPED)
    edit(api, admin_token, user_id, email=CORRECT)
    forced = api.post("/settings/set", {"auth_methods": ["2FA"]}, admin_token)
    assert forced.status_code == 200, forced.text

    assert_dead(api, stolen)
    error(api.login(CORRECT, ATTACKER_PASSWORD), 401, 1)  # no password was set
    # The right person's own link, once asked for, works.
    api.clock.advance(api.core.links.resend_after)
    assert api.post("/reset-password/request", {"email": [CORRECT]}).status_code == 200
    own = link_id(api.core, CORRECT)
    assert api.post(f"/reset-password/reset/{own}", {"password": "johns own passphrase"}).is_success
    assert api.login(CORRECT, "johns own passphrase").status_code == 207  # 2FA enrolment next


def test_links_of_a_disabled_user_stay_dead_even_after_re_enabling(
    api: Api, admin_token: str
) -> None:
    user_id = create(api, admin_token, CORRECT)
    welcome = link_id(api.core, CORRECT)
    edit(api, admin_token, user_id, status="D")
    assert_dead(api, welcome)
    edit(api, admin_token, user_id, status="A")
    assert_dead(api, welcome)  # revoked at disabling, not just refused while disabled


def test_links_of_a_deleted_user_are_gone(api: Api, admin_token: str) -> None:
    user_id = create(api, admin_token, CORRECT)
    welcome = link_id(api.core, CORRECT)
    assert api.post("/user/delete", {"ids": [user_id]}, admin_token).status_code in (200, 202)
    assert_dead(api, welcome)


def test_a_link_checked_before_an_email_change_cannot_finish_after_it(
    api: Api, admin_token: str, monkeypatch: Any
) -> None:
    """The change lands while the redeeming request hashes the new password:
    the write after the hash re-checks the link and the user and refuses."""
    user_id = create(api, admin_token, MISTYPED)
    stolen = link_id(api.core, MISTYPED)
    hash_password = api.core.passwords.hash

    def change_meanwhile(secret: str) -> str:
        hashed = hash_password(secret)
        monkeypatch.setattr(api.core.passwords, "hash", hash_password)
        edit(api, admin_token, user_id, email=CORRECT)
        return hashed

    monkeypatch.setattr(api.core.passwords, "hash", change_meanwhile)
    error(api.post(f"/reset-password/reset/{stolen}", {"password": ATTACKER_PASSWORD}), 401, 1)
    error(api.login(CORRECT, ATTACKER_PASSWORD), 401, 1)


def test_a_link_still_at_the_users_email_keeps_working(api: Api, admin_token: str) -> None:
    """Edits that touch neither the email nor the status revoke nothing."""
    user_id = create(api, admin_token, CORRECT)
    welcome = link_id(api.core, CORRECT)
    edit(api, admin_token, user_id, name="John Q. Smith", email=CORRECT.upper())
    response = api.post(f"/reset-password/reset/{welcome}", {"password": "johns own passphrase"})
    assert response.status_code == 200, response.text
