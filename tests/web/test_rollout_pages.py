"""Issue 12 in the pages, in-process: the grace period on /admin/settings
and the "turn on 2FA now, or later" choice at sign-in; the recover button on
the PIN step, the mailed cancel page with its CSRF form, the self-recovery
switch, and approving or cancelling a recovery on /admin/users/<id>."""

from __future__ import annotations

from typing import Any

import pytest

from quatrix_mfa.core.model import User
from tests.support import outbox
from tests.support.admin import PASSWORD, add_users, admin_account
from tests.web.conftest import Site

PIN = "97531"


@pytest.fixture
def admin_site(site: Site) -> Site:
    site.sign_in()
    return site


def with_pin(site: Site) -> User:
    """A user with a password and a PIN (their login stops at the PIN step)."""
    (user,) = add_users(site.core, 1, password=True)
    hashed = site.core.pin.hash(PIN)
    with site.core.store.transaction() as tx:
        site.core.pin.set(tx, user, hashed, site.clock.now())
    return user


def at_pin_step(make_site: Any, user: User) -> Site:
    browser: Site = make_site()
    answer = browser.sign_in(user.email, PASSWORD)
    assert answer.headers["location"].startswith("/login"), answer.text
    return browser


def test_a_grace_period_set_on_the_settings_page_lets_users_sign_in_and_choose_later(
    admin_site: Site, make_site: Any
) -> None:
    (person,) = add_users(admin_site.core, 1, password=True)
    preview = admin_site.submit(
        "/admin/settings", "/admin/settings/2fa", {"force_2fa": "yes", "mfa_grace_days": "14"}
    )
    assert "14 more days" in preview.text and 'name="mfa_grace_days" value="14"' in preview.text
    data = {"force_2fa": "yes", "confirm": "yes", "mfa_grace_days": "14"}
    saved = admin_site.submit("/admin/settings", "/admin/settings/2fa", data)
    assert saved.headers["location"] == "/admin/settings?notice=saved"
    assert "may still sign in without it until" in admin_site.get("/admin/settings").text
    assert admin_site.get("/account").status_code == 200  # the admin stays signed in

    browser: Site = make_site()
    answer = browser.sign_in(person.email, PASSWORD, next="/account")
    assert answer.headers["location"].startswith("/login/2fa-later")
    choice = browser.get(answer.headers["location"])
    assert "Turn on 2FA now" in choice.text and "Later (14 days left)" in choice.text
    assert 'href="/account"' in choice.text


@pytest.mark.parametrize("grace", ["-1", "91", "x", "1e3", "٣"])
def test_a_bad_grace_period_is_shown_and_changes_nothing(admin_site: Site, grace: str) -> None:
    data = {"force_2fa": "yes", "confirm": "yes", "mfa_grace_days": grace}
    answer = admin_site.submit("/admin/settings", "/admin/settings/2fa", data)
    assert answer.status_code == 400
    assert "Enter a whole number of days from 0 to 90." in answer.text
    assert not admin_account(admin_site.core).force_2fa


def test_the_pin_step_offers_a_recovery_and_its_mailed_page_cancels_it(
    site: Site, make_site: Any
) -> None:
    user = with_pin(site)
    browser = at_pin_step(make_site, user)
    assert "Lost your device? Recover access" in browser.get("/login").text
    started = browser.submit("/login", "/login/recover", {"next": ""})
    assert started.status_code == 200 and "A recovery was started" in started.text
    cancel_id = outbox.latest_recovery_cancel_id(site.core, user.email)
    path = f"/recover-mfa/cancel/{cancel_id}"
    ask = site.get(path)
    assert 'method="post"' in ask.text and "csrf_token" in ask.text
    forged = site.http.post(path, data={}, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    done = site.submit(path, path, {})
    assert "The recovery was cancelled" in done.text
    again = site.submit(path, path, {})
    assert again.status_code == 404 and "This link no longer works" in again.text


def test_with_self_recovery_off_the_page_says_to_ask_an_administrator(
    admin_site: Site, make_site: Any
) -> None:
    switched = admin_site.submit("/admin/settings", "/admin/settings/recovery", {})
    assert switched.headers["location"] == "/admin/settings?notice=saved"
    assert not admin_account(admin_site.core).mfa_self_recovery
    browser = at_pin_step(make_site, with_pin(admin_site))
    refused = browser.submit("/login", "/login/recover", {"next": ""})
    assert refused.status_code == 403 and "turned self-service recovery off" in refused.text


def test_an_administrator_approves_a_recovery_on_the_users_page(
    admin_site: Site, make_site: Any
) -> None:
    user = with_pin(admin_site)
    browser = at_pin_step(make_site, user)
    browser.submit("/login", "/login/recover", {"next": ""})
    page_path = f"/admin/users/{user.id}"
    assert "This user started a recovery" in admin_site.get(page_path).text
    approved = admin_site.submit(page_path, f"{page_path}/recovery", {"decision": "approve"})
    assert approved.headers["location"] == f"{page_path}?notice=done"
    shown = admin_site.get(page_path).text
    assert "An administrator approved it." in shown and "Approve now" not in shown
    again: Site = make_site()
    answer = again.sign_in(user.email, PASSWORD)
    assert answer.headers["location"].startswith("/login")
    assert "authenticator" in again.get("/login").text.lower()  # enrol 2FA again, no PIN


def test_an_unknown_decision_is_refused(admin_site: Site) -> None:
    user = with_pin(admin_site)
    page_path = f"/admin/users/{user.id}"
    odd = admin_site.submit(page_path, f"{page_path}/recovery", {"decision": "maybe"})
    assert odd.status_code == 400
    none_open = admin_site.submit(page_path, f"{page_path}/recovery", {"decision": "cancel"})
    assert none_open.status_code == 400 and "No open recovery" in none_open.text
