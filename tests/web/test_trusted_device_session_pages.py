"""The factor pages of a session opened through a trusted browser (issue 13,
attack finding F1): they say why nothing can be changed there, start no 2FA
key, and refuse a posted change (403) with nothing changed."""

from __future__ import annotations

import pytest

from tests.support.admin import PASSWORD
from tests.support.device_pages import pin_step, user_with_pin
from tests.web.conftest import Site


@pytest.fixture
def email(site: Site) -> str:
    """A user with a password and a PIN (set through the API)."""
    return user_with_pin(site)


MESSAGE = "You signed in with a trusted browser: sign in with your second factor to change this."
MESSAGE_DE = "Sie haben sich mit einem vertrauenswürdigen Browser angemeldet"


def by_trusted_browser(site: Site, email: str) -> None:
    pin_step(site, email, remember_device="yes")
    site.http.cookies.delete("__Host-qmfa_session")
    assert site.sign_in(email, PASSWORD).headers["location"] == "/account"


def factors_of(site: Site, email: str) -> object:
    """The user row as stored: factors, PIN and credential epoch."""
    with site.core.store.transaction(write=False) as tx:
        return tx.users.by_email(email)


@pytest.mark.parametrize("path", ["/account/2fa", "/account/2fa?replace=1", "/account/pin"])
def test_the_factor_pages_say_why_and_show_no_form(site: Site, email: str, path: str) -> None:
    by_trusted_browser(site, email)
    page = site.get(path)
    assert page.status_code == 200
    assert MESSAGE in page.text
    assert 'action="/account/pin"' not in page.text and 'action="/account/2fa"' not in page.text
    with site.core.store.transaction(write=False) as tx:
        user = tx.users.by_email(email)
        assert user is not None and tx.credentials.enrollment(user.id) is None  # no key started
    german = site.get(path, headers={"Accept-Language": "de"})
    assert MESSAGE_DE in german.text


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("/account/pin", {"pin": "9876", "current_password": PASSWORD}),
        ("/account/pin/remove", {"current_password": PASSWORD}),
        ("/account/2fa", {"code": "123456"}),
    ],
)
def test_a_posted_change_is_refused_and_changes_nothing(
    site: Site, email: str, action: str, data: dict[str, str]
) -> None:
    by_trusted_browser(site, email)
    before = factors_of(site, email)
    # The factor pages show no form now: the CSRF token of another page of ours.
    response = site.submit("/account/devices", action, data)
    assert response.status_code == 403
    assert MESSAGE in response.text
    assert factors_of(site, email) == before
