"""The account's settings in the admin console, in-process: forcing 2FA
shows what it will do before anything changes, then does it when confirmed;
the IP allow-list with core's validation and lock-yourself-out guard."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, basic
from tests.support.admin import PASSWORD, add_users, admin_account
from tests.web.conftest import Site

ADMIN_IP = "10.0.0.5"


@pytest.fixture
def proxied(make_site: Any, site: Site) -> Site:
    """The pages behind our own proxy: every request comes from ADMIN_IP."""
    behind: Site = make_site(peer="127.0.0.1", trust_forwarded_for=True)
    behind.http.headers["X-Forwarded-For"] = ADMIN_IP
    behind.sign_in()
    return behind


def api_session(site: Site, email: str, password: str = PASSWORD) -> str:
    response = site.http.get(
        "/api/1.0/session/login", headers={"Authorization": basic(email, password)}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["session_id"])


def alive(site: Site, token: str) -> bool:
    response = site.http.get("/api/1.0/profile", headers={"X-Auth-Token": token})
    return response.status_code == 200


def test_forcing_2fa_first_shows_its_effect_and_changes_nothing(proxied: Site) -> None:
    users = add_users(proxied.core, 3, password=True)
    tokens = [api_session(proxied, u.email) for u in users[:2]]
    preview = proxied.submit("/admin/settings", "/admin/settings/2fa", {"force_2fa": "yes"})
    assert preview.status_code == 200
    # The administrator has no 2FA either: their own browser session ends too.
    assert "4 of 4 users have no 2FA; their 3 open sessions will end." in preview.text
    shown = preview.text.replace("<wbr>", "")  # an email may wrap before its "@"
    assert all(u.email in shown for u in users)
    assert 'name="confirm" value="yes"' in preview.text
    assert not admin_account(proxied.core).force_2fa
    assert all(alive(proxied, t) for t in tokens)


def test_confirming_the_preview_forces_2fa_and_ends_those_sessions(proxied: Site) -> None:
    (person,) = add_users(proxied.core, 1, password=True)
    token = api_session(proxied, person.email)
    data = {"force_2fa": "yes", "confirm": "yes"}
    response = proxied.submit("/admin/settings", "/admin/settings/2fa", data)
    assert response.headers["location"] == "/admin/settings?notice=saved"
    assert admin_account(proxied.core).force_2fa
    assert not alive(proxied, token)


def test_the_preview_agrees_with_the_api(proxied: Site) -> None:
    add_users(proxied.core, 2, password=True)
    api_session(proxied, "user000@example.com")
    token = api_session(proxied, ADMIN_EMAIL, ADMIN_PASSWORD)
    impact = proxied.http.get(
        "/api/1.0/settings/mfa-impact", headers={"X-Auth-Token": token}
    ).json()
    assert (impact["users"], impact["users_without_2fa"], impact["sessions_to_end"]) == (3, 3, 3)
    assert impact["first_users"][0]["email"] == ADMIN_EMAIL
    preview = proxied.submit("/admin/settings", "/admin/settings/2fa", {"force_2fa": "yes"})
    assert "3 of 3 users have no 2FA; their 3 open sessions will end." in preview.text


def test_no_longer_forcing_2fa_saves_at_once(proxied: Site) -> None:
    with proxied.core.store.transaction() as tx:
        account = admin_account(proxied.core)
        account.force_2fa = True
        tx.accounts.save(account)
    page = proxied.get("/admin/settings")
    assert "Every user must use 2FA." in page.text
    response = proxied.submit("/admin/settings", "/admin/settings/2fa", {"force_2fa": "no"})
    assert response.status_code == 303
    assert not admin_account(proxied.core).force_2fa


def test_a_valid_allow_list_is_saved_and_shown(proxied: Site) -> None:
    text = f"{ADMIN_IP}\r\n10.0.1.0/24\r\n\r\n10.0.2.1-20\r\n"
    data = {"ip_restricted": "yes", "ip_whitelist": text}
    response = proxied.submit("/admin/settings", "/admin/settings/ip", data)
    assert response.status_code == 303, response.text
    account = admin_account(proxied.core)
    assert account.ip_restricted
    assert account.ip_whitelist == [ADMIN_IP, "10.0.1.0/24", "10.0.2.1-20"]
    shown = proxied.get("/admin/settings").text
    assert f"{ADMIN_IP}\n10.0.1.0/24\n10.0.2.1-20</textarea>" in shown


def test_an_invalid_entry_is_named_next_to_the_field_and_the_typing_kept(proxied: Site) -> None:
    text = f"{ADMIN_IP}\r\n10.0.0.256\r\n<b>nonsense</b>"
    data = {"ip_restricted": "yes", "ip_whitelist": text}
    response = proxied.submit("/admin/settings", "/admin/settings/ip", data)
    assert response.status_code == 400
    assert 'id="ip_whitelist-error"' in response.text
    assert "10.0.0.256" in response.text and "&lt;b&gt;nonsense&lt;/b&gt;" in response.text
    assert "<b>nonsense</b>" not in response.text
    account = admin_account(proxied.core)
    assert not account.ip_restricted and account.ip_whitelist == []


def test_a_list_without_the_admins_own_address_is_refused(proxied: Site) -> None:
    data = {"ip_restricted": "yes", "ip_whitelist": "10.9.9.0/24"}
    response = proxied.submit("/admin/settings", "/admin/settings/ip", data)
    assert response.status_code == 400
    assert "would lock you out: your own address (10.0.0.5)" in response.text
    assert "10.9.9.0/24</textarea>" in response.text
    assert not admin_account(proxied.core).ip_restricted
    empty = proxied.submit("/admin/settings", "/admin/settings/ip", {"ip_restricted": "yes"})
    assert empty.status_code == 400 and "at least one address" in empty.text


def test_settings_posts_without_the_csrf_token_change_nothing(proxied: Site) -> None:
    posts = [
        ("/admin/settings/2fa", {"force_2fa": "yes", "confirm": "yes"}),
        ("/admin/settings/ip", {"ip_restricted": "yes", "ip_whitelist": ADMIN_IP}),
    ]
    for path, data in posts:
        assert proxied.http.post(path, data=data).status_code == 403
    account = admin_account(proxied.core)
    assert not account.force_2fa and not account.ip_restricted


def test_odd_settings_input_is_an_error_on_the_page(proxied: Site) -> None:
    odd = proxied.submit("/admin/settings", "/admin/settings/2fa", {"force_2fa": "maybe"})
    assert odd.status_code == 400 and "Choose to force 2FA or not" in odd.text
    control = {"ip_restricted": "yes", "ip_whitelist": f"{ADMIN_IP}\x00"}
    refused = proxied.submit("/admin/settings", "/admin/settings/ip", control)
    assert refused.status_code == 400 and "cannot be read" in refused.text
    huge = {"ip_restricted": "yes", "ip_whitelist": "1" * 61_000}
    assert proxied.submit("/admin/settings", "/admin/settings/ip", huge).status_code == 400
    assert not admin_account(proxied.core).ip_restricted
