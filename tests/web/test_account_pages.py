"""The account pages in-process (no browser): the overview, changing the
password, the sessions page, and what every page and form of the account
requires (a full session, the CSRF token). The factor pages are in
test_account_factor_pages.py."""

from __future__ import annotations

import re
from typing import Any

import pytest

from quatrix_mfa.core import own_sessions
from quatrix_mfa.core.bootstrap import bootstrap
from quatrix_mfa.core.errors import NotAuthenticated
from quatrix_mfa.core.sessions import token_hash
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.account_pages import alive, edit_user, people, session_handles
from tests.support.core_driver import ADDR
from tests.web.conftest import SESSION_COOKIE, Site

PAGES = ["/account", "/account/password", "/account/2fa", "/account/pin", "/account/sessions"]
FORMS = [
    ("/account/password", "/account/password"),
    ("/account/2fa", "/account/2fa"),
    ("/account/2fa", "/account/2fa/recovery-codes"),
    ("/account/2fa", "/account/2fa/remove"),
    ("/account/pin", "/account/pin"),
    ("/account/pin", "/account/pin/remove"),
    ("/account/sessions", "/account/sessions/close"),
    ("/account/sessions", "/account/sessions/close-others"),
]
NEW = "a quite new passphrase 42"


def password_change(site: Site, current: str, new: str, confirm: str | None = None) -> object:
    data = {
        "current_password": current,
        "new_password": new,
        "confirm_password": new if confirm is None else confirm,
    }
    return site.submit("/account/password", "/account/password", data)


def signs_in(site: Site, password: str) -> bool:
    driver, _ = people(site)
    try:
        driver.login(ADMIN_EMAIL, password)
    except NotAuthenticated:
        return False
    return True


# What every account page requires ---------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_every_account_page_sends_a_stranger_to_sign_in_and_back(site: Site, path: str) -> None:
    response = site.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=" + path.replace("/", "%2F")


def test_a_pending_session_is_not_enough_for_the_account_pages(site: Site) -> None:
    edit_user(site.core, pin_forced=True)
    _, scenario = people(site)
    scenario.set_pin(scenario.full_session())
    assert site.sign_in().headers["location"] == "/login?next=%2Faccount"  # the PIN step
    for path in PAGES:
        assert site.get(path).headers["location"].startswith("/login?next="), path


@pytest.mark.parametrize(("page", "action"), FORMS)
def test_every_account_form_without_its_csrf_token_is_403_and_changes_nothing(
    site: Site, page: str, action: str
) -> None:
    site.sign_in()
    _, scenario = people(site)
    other = scenario.full_session()
    token = site.session_token
    data = {
        "current_password": ADMIN_PASSWORD,
        "new_password": NEW,
        "confirm_password": NEW,
        "pin": "4711",
        "code": "123456",
        "session": session_handles(site.get("/account/sessions").text)[0],
    }
    site.get(page)
    for csrf in (None, "", "f" * 64, "٣٤٥٦"):
        form = data if csrf is None else {**data, "csrf_token": csrf}
        response = site.http.post(action, data=form)
        assert response.status_code == 403, (action, response.text)
        assert "Nothing was changed" in response.text
    assert site.session_token == token and alive(site.core, other)
    assert signs_in(site, ADMIN_PASSWORD)
    assert "You have no PIN" in site.get("/account/pin").text


@pytest.mark.parametrize(("page", "action"), FORMS)
def test_odd_input_on_any_account_form_is_a_page_never_a_500(
    site: Site, page: str, action: str
) -> None:
    site.sign_in()
    names = ("current_password", "new_password", "confirm_password", "pin", "code", "session")
    for odd in ("a\x00b", "x" * 5000, " ", "٣٤٥٦"):
        response = site.submit("/account", action, dict.fromkeys(names, odd))
        assert response.status_code < 500, (action, odd)
        assert response.status_code == 303 or "text/html" in response.headers["content-type"]
    assert signs_in(site, ADMIN_PASSWORD)
    assert "You have no PIN" in site.get("/account/pin").text


def test_a_form_posted_without_a_session_goes_to_sign_in_and_changes_nothing(
    site: Site,
) -> None:
    site.get("/login")
    response = site.http.post("/account/password", data={"new_password": NEW})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Faccount%2Fpassword"
    assert signs_in(site, ADMIN_PASSWORD)


# The overview ------------------------------------------------------------------------


def test_the_overview_shows_who_the_factors_and_links_to_every_page(site: Site) -> None:
    site.sign_in()
    page = site.get("/account")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert f'data-field="email">{ADMIN_EMAIL}<' in page.text
    assert 'data-field="2fa">Off<' in page.text and 'data-field="pin">Off<' in page.text
    for path in PAGES[1:]:
        assert f'href="{path}"' in page.text
    nav = page.text.split("<nav", 1)[1].split("</nav>", 1)[0]
    assert "/account/sessions" in nav and "/logout" in nav
    assert page.text.count('<button type="submit"') == 1  # sign out


# Changing the password ---------------------------------------------------------------


def test_changing_the_password_keeps_this_browser_in_a_fresh_session(site: Site) -> None:
    site.sign_in()
    _, scenario = people(site)
    other = scenario.full_session()
    before = site.session_token
    form = site.get("/account/password")
    assert "At least 12 characters" in form.text
    assert 'autocomplete="current-password"' in form.text
    assert form.text.count('autocomplete="new-password"') == 2

    done = password_change(site, ADMIN_PASSWORD, NEW)

    assert done.status_code == 303  # type: ignore[attr-defined]
    assert done.headers["location"] == "/account?notice=password-changed"  # type: ignore[attr-defined]
    assert site.session_token not in (None, before)
    assert before is not None and not alive(site.core, before) and not alive(site.core, other)
    assert "Your password is changed" in site.get("/account?notice=password-changed").text
    assert signs_in(site, NEW) and not signs_in(site, ADMIN_PASSWORD)


@pytest.mark.parametrize(
    ("current", "new", "confirm", "field", "says"),
    [
        ("not the password at all", NEW, NEW, "current_password", "not your current password"),
        (ADMIN_PASSWORD, "short", "short", "new_password", "at least 12 characters"),
        (ADMIN_PASSWORD, "password1234", "password1234", "new_password", "Too common"),
        (ADMIN_PASSWORD, ADMIN_EMAIL, ADMIN_EMAIL, "new_password", "it is your email address"),
        (ADMIN_PASSWORD, NEW, NEW + "x", "confirm_password", "differ"),
        ("", NEW, NEW, "current_password", "Required"),
    ],
)
def test_a_refused_password_change_says_why_next_to_the_field_and_keeps_no_password(
    site: Site, current: str, new: str, confirm: str, field: str, says: str
) -> None:
    site.sign_in()
    token = site.session_token
    response = password_change(site, current, new, confirm)
    assert response.status_code == 400, response.text  # type: ignore[attr-defined]
    text = response.text  # type: ignore[attr-defined]
    error = text.split(f'id="{field}-error"', 1)[1].split("</p>", 1)[0]
    assert says in error
    assert f'aria-describedby="{field}-error"' in text
    for typed in {current, new, confirm} - {""}:
        assert f'value="{typed}"' not in text
    assert site.session_token == token and signs_in(site, ADMIN_PASSWORD)


def test_a_throttled_password_change_shows_the_wait_next_to_the_current_password(
    make_site: Any,
) -> None:
    site = make_site(user_failure_threshold=1)
    bootstrap(site.core, ADMIN_EMAIL, "Example", ADMIN_PASSWORD)
    site.sign_in()
    password_change(site, "a wrong guess of it", NEW)
    response = password_change(site, ADMIN_PASSWORD, NEW)
    assert response.status_code == 429  # type: ignore[attr-defined]
    error = response.text.split('id="current_password-error"', 1)[1]  # type: ignore[attr-defined]
    assert re.match(r"[^>]*>Too many attempts. Wait \d+ seconds", error)
    site.clock.advance(site.core.throttle_policy.max_delay)
    assert signs_in(site, ADMIN_PASSWORD)  # unchanged


# Sessions ------------------------------------------------------------------------------


def test_the_sessions_page_lists_this_browser_and_the_others_with_their_address(
    site: Site,
) -> None:
    site.sign_in()
    _, scenario = people(site)
    scenario.full_session()  # an API session from ADDR
    page = site.get("/account/sessions")
    assert page.status_code == 200
    assert page.text.count("data-session") == 2
    assert "This browser" in page.text and "API client" in page.text
    assert ADDR in page.text
    assert len(session_handles(page.text)) == 1  # this browser signs out with "Sign out"
    assert site.session_token not in page.text


def test_signing_out_another_session_ends_it_and_keeps_this_one(site: Site) -> None:
    site.sign_in()
    _, scenario = people(site)
    other = scenario.full_session()
    (handle,) = session_handles(site.get("/account/sessions").text)
    done = site.submit("/account/sessions", "/account/sessions/close", {"session": handle})
    assert done.headers["location"] == "/account/sessions?notice=session-closed"
    assert not alive(site.core, other)
    assert site.get("/account/sessions").status_code == 200
    again = site.submit("/account", "/account/sessions/close", {"session": handle})
    assert again.status_code == 404 and "not one of yours" in again.text


def test_another_users_session_handle_is_refused_and_their_session_lives(
    site: Site, make_site: object
) -> None:
    _, scenario = people(site)
    paul = scenario.user(scenario.admin().token, "paul@example.com")
    paul_site = make_site()  # type: ignore[operator]
    paul_site.sign_in("paul@example.com", paul.password)
    (pauls_handle,) = session_handles(paul_site.get("/account/sessions").text)

    site.sign_in()
    response = site.submit("/account", "/account/sessions/close", {"session": pauls_handle})

    assert response.status_code == 404
    assert alive(site.core, paul.token) and paul_site.get("/account").status_code == 200
    assert "paul@example.com" not in site.get("/account/sessions").text
    for made_up in ("", "0" * 64, paul.token):
        refused = site.submit("/account", "/account/sessions/close", {"session": made_up})
        assert refused.status_code == 404
    assert alive(site.core, paul.token)


def test_signing_out_all_others_keeps_this_browser_and_other_peoples_sessions(
    site: Site,
) -> None:
    _, scenario = people(site)
    paul = scenario.user(scenario.admin().token, "paul@example.com")
    site.sign_in()
    others = [scenario.full_session() for _ in range(2)]
    done = site.submit("/account/sessions", "/account/sessions/close-others", {})
    assert done.headers["location"] == "/account/sessions?notice=others-closed"
    assert not any(alive(site.core, t) for t in others)
    assert alive(site.core, paul.token)
    page = site.get("/account/sessions?notice=others-closed")
    assert page.text.count("data-session") == 1 and "signed in nowhere else" in page.text


def test_signing_out_this_browser_from_the_list_ends_its_session(site: Site) -> None:
    site.sign_in()
    token = site.session_token
    assert token is not None
    handle = own_sessions.handle_of(site.core, token_hash(site.core, token))
    done = site.submit("/account", "/account/sessions/close", {"session": handle})
    assert done.headers["location"] == "/login?notice=signed-out"
    assert not alive(site.core, token) and site.http.cookies.get(SESSION_COOKIE) is None
