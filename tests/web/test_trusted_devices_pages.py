"""Trusted browsers on the pages, in-process (issue 13): the cookie's
attributes over https, the box only while the account allows trust, the
days setting refused outside 0 to 365 with nothing changed, and a revoke of a
browser that is not the caller's."""

from __future__ import annotations

import pytest

from tests.support.admin import PASSWORD, admin_account
from tests.support.device_pages import DEVICE_COOKIE, PIN, pin_step, user_with_pin
from tests.web.conftest import Site

BOX = "Trust this browser for"


@pytest.fixture
def email(site: Site) -> str:
    """A user with a password and a PIN (set through the API)."""
    return user_with_pin(site)


def test_the_box_sets_a_secure_httponly_lax_cookie_that_lasts_the_days(
    site: Site, email: str
) -> None:
    assert site.sign_in(email, PASSWORD).status_code == 303
    assert "Trust this browser for 30 days" in site.get("/login").text
    done = site.submit("/login", "/login/pin", {"pin": PIN, "remember_device": "yes"})
    assert done.status_code == 303
    (cookie,) = [h for h in done.headers.get_list("set-cookie") if h.startswith(DEVICE_COOKIE)]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "secure", "path", "max-age"} <= attributes
    assert "samesite=lax" in cookie.lower()
    assert "max-age=2592000" in cookie.lower()


def test_the_password_alone_signs_a_trusted_browser_in(site: Site, email: str) -> None:
    pin_step(site, email, remember_device="yes")
    site.http.cookies.delete("__Host-qmfa_session")
    signed_in = site.sign_in(email, PASSWORD)
    assert signed_in.headers["location"] == "/account"


def test_no_box_while_the_account_allows_no_trust(site: Site, email: str) -> None:
    site.sign_in()
    response = site.submit(
        "/admin/settings", "/admin/settings/devices", {"trusted_device_days": "0"}
    )
    assert response.headers["location"] == "/admin/settings?notice=saved"
    site.http.cookies.clear()
    site.sign_in(email, PASSWORD)
    assert BOX not in site.get("/login").text
    done = site.submit("/login", "/login/pin", {"pin": PIN, "remember_device": "yes"})
    assert done.status_code == 303
    assert not [h for h in done.headers.get_list("set-cookie") if h.startswith(DEVICE_COOKIE)]


@pytest.mark.parametrize("days", ["366", "-1", "7.5", "seven", "", "3650"])
def test_bad_days_are_refused_and_change_nothing(site: Site, days: str) -> None:
    site.sign_in()
    response = site.submit(
        "/admin/settings", "/admin/settings/devices", {"trusted_device_days": days}
    )
    assert response.status_code == 400
    assert "Enter a whole number of days from 0 to 365." in response.text
    assert admin_account(site.core).trusted_device_days == 30


def test_revoking_a_browser_that_is_not_yours_changes_nothing(site: Site, email: str) -> None:
    pin_step(site, email, remember_device="yes")
    for device in ("5b0d3d4e-8a55-4d8e-9a39-3f0a0f6c1b2a", "not-an-id", ""):
        response = site.submit("/account/devices", "/account/devices/revoke", {"device": device})
        assert response.status_code == 404
        assert "That browser is not one of yours" in response.text
    assert site.get("/account/devices").text.count("data-device") == 1


def test_a_refused_device_cookie_is_dropped_at_the_next_sign_in(site: Site, email: str) -> None:
    pin_step(site, email, remember_device="yes")
    assert site.http.cookies.get(DEVICE_COOKIE)
    site.http.cookies.delete("__Host-qmfa_session")
    site.sign_in()  # the administrator revokes every trust of the account
    site.submit("/admin/settings", "/admin/settings/devices", {"trusted_device_days": "0"})
    site.http.cookies.delete("__Host-qmfa_session")
    signed_in = site.sign_in(email, PASSWORD)
    assert signed_in.headers["location"].startswith("/login")  # the PIN step again
    dropped = [h for h in signed_in.headers.get_list("set-cookie") if h.startswith(DEVICE_COOKIE)]
    assert dropped and ("max-age=0" in dropped[0].lower() or "expires=" in dropped[0].lower())
    assert not site.http.cookies.get(DEVICE_COOKIE)


def test_another_users_sign_in_keeps_the_device_cookie(site: Site, email: str) -> None:
    pin_step(site, email, remember_device="yes")
    kept = site.http.cookies.get(DEVICE_COOKIE)
    site.http.cookies.delete("__Host-qmfa_session")
    other = user_with_pin(site, "other")  # a second person on the same browser
    signed_in = site.sign_in(other, PASSWORD)
    assert signed_in.headers["location"].startswith("/login")  # their PIN: the cookie was refused
    assert not [h for h in signed_in.headers.get_list("set-cookie") if h.startswith(DEVICE_COOKIE)]
    assert site.http.cookies.get(DEVICE_COOKIE) == kept
