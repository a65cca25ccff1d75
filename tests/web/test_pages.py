"""The pages' handlers in-process, where no browser is needed: cookies,
CSRF, headers, redirects, refusals shown on the page, and bad input."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from quatrix_mfa.core.bootstrap import bootstrap
from quatrix_mfa.core.factors import totp
from quatrix_mfa.core.model import SessionKind
from quatrix_mfa.core.sessions import token_hash
from quatrix_mfa.storage import tables
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, basic, latest_link
from tests.web.conftest import SESSION_COOKIE, SITE, Site, csrf_of

CSP = "default-src 'self'; frame-ancestors 'none'"


def stored_kind(site: Site, token: str) -> SessionKind:
    with site.core.store.transaction(write=False) as tx:
        found = tx.sessions.get_with_owner(token_hash(site.core, token))
    assert found is not None
    return found[0].kind


def session_count(site: Site) -> int:
    """Open sessions of anyone, read from the table itself."""
    engine = site.core.store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(tables.sessions)).scalar_one())


def edit_account(site: Site, **changes: Any) -> None:
    """Change the admin's account settings (the admin pages are later work)."""
    with site.core.store.transaction() as tx:
        user = tx.users.by_email(ADMIN_EMAIL)
        assert user is not None
        account = tx.accounts.get(user.account_id)
        assert account is not None
        for name, value in changes.items():
            setattr(account, name, value)
        tx.accounts.save(account)


def test_root_sends_a_stranger_to_login_and_a_signed_in_user_to_the_account(site: Site) -> None:
    assert site.get("/").headers["location"] == "/login"
    assert site.sign_in().headers["location"] == "/account"
    assert site.get("/").headers["location"] == "/account"


def test_sign_in_opens_a_browser_session_in_a_host_only_secure_cookie(site: Site) -> None:
    response = site.sign_in()
    assert response.status_code == 303
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "=")
    )
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "path=/", "samesite=lax"} <= flags
    assert not any(f.startswith("domain") for f in flags)
    token = site.session_token
    assert token is not None and stored_kind(site, token) is SessionKind.BROWSER
    page = site.get("/account")
    assert page.status_code == 200
    assert ADMIN_EMAIL in page.text and "Example" in page.text


def test_a_plain_http_public_url_drops_the_host_prefix_and_secure(make_site: Any) -> None:
    site = make_site(public_url="http://127.0.0.1:8080")
    cookies = site.get("/login").headers.get_list("set-cookie")
    assert cookies and all(c.startswith("qmfa_pre=") for c in cookies)
    assert all("secure" not in c.lower() for c in cookies)


def test_every_page_carries_the_csp_no_referrer_and_no_store(site: Site) -> None:
    for path in ("/login", "/forgot-password", "/account", "/"):
        response = site.get(path)
        assert response.headers["content-security-policy"].startswith(CSP), path
        assert response.headers["referrer-policy"] == "no-referrer", path
    page = site.get("/login")
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text and "style=" not in page.text


def test_login_without_a_csrf_token_is_403_and_opens_no_session(site: Site) -> None:
    site.get("/login")
    data = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    for token in (None, "", "0" * 64):
        form = data if token is None else {**data, "csrf_token": token}
        response = site.http.post("/login", data=form)
        assert response.status_code == 403, response.text
        assert "Nothing was changed" in response.text
    assert site.session_token is None and session_count(site) == 0


def test_a_token_from_another_browser_is_refused(site: Site, make_site: Any) -> None:
    other = make_site()
    stolen = csrf_of(other.get("/login"))  # the attacker's own pre-session
    response = site.http.post(
        "/login", data={"csrf_token": stolen, "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 403 and session_count(site) == 0


def test_a_post_from_another_site_is_refused_even_with_the_token(site: Site) -> None:
    data = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        response = site.submit("/login", "/login", data, headers=headers)
        assert response.status_code == 403, headers
    assert session_count(site) == 0


def test_logout_without_a_csrf_token_is_403_and_the_session_stays(site: Site) -> None:
    site.sign_in()
    assert site.http.post("/logout", data={}).status_code == 403
    assert site.get("/account").status_code == 200
    response = site.submit("/account", "/logout", {})
    assert response.headers["location"] == "/login?notice=signed-out"
    assert session_count(site) == 0
    assert site.get("/account").headers["location"] == "/login?next=%2Faccount"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "\\\\evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "/\r\nLocation: https://evil.example",
        "/\\\\evil.example",
    ],
)
def test_next_never_leaves_the_site(site: Site, target: str) -> None:
    data = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "next": target}
    response = site.submit("/login", "/login", data)
    assert response.status_code == 303
    assert response.headers["location"] == "/account"


def test_an_expired_session_goes_to_login_and_back_to_the_page(site: Site) -> None:
    site.sign_in()
    site.clock.advance(site.core.sessions.idle_seconds + 1)
    response = site.get("/account")
    assert response.headers["location"] == "/login?next=%2Faccount"
    back = site.sign_in(next="/account")
    assert back.headers["location"] == "/account"


def test_a_wrong_password_is_shown_and_the_email_kept_but_not_the_password(site: Site) -> None:
    response = site.sign_in(password="not the password at all")
    assert response.status_code == 401
    assert "Wrong email or password" in response.text
    assert f'value="{ADMIN_EMAIL}"' in response.text
    assert "not the password at all" not in response.text
    assert site.session_token is None


def test_throttling_shows_the_wait(make_site: Any) -> None:
    site = make_site(user_failure_threshold=1)
    bootstrap(site.core, ADMIN_EMAIL, "Example", ADMIN_PASSWORD)
    site.sign_in(password="wrong password one")
    response = site.sign_in()
    assert response.status_code == 429
    assert re.search(r"Wait \d+ seconds", response.text)
    assert site.session_token is None


def test_an_address_outside_the_allow_list_is_told_so(site: Site) -> None:
    edit_account(site, ip_restricted=True, ip_whitelist=["10.9.9.9"])
    response = site.sign_in()
    assert response.status_code == 403
    assert "does not allow signing in from this network address" in response.text
    assert site.session_token is None


def test_odd_input_is_a_page_with_the_error_never_a_500(site: Site) -> None:
    for email in ("a\x00b@example.com", "x" * 5000):
        response = site.sign_in(email=email)
        assert response.status_code == 400, response.text
        assert "text/html" in response.headers["content-type"]
    assert session_count(site) == 0


def test_an_api_token_in_the_cookie_is_not_a_browser_session(site: Site) -> None:
    api_token = site.http.get(
        "/api/1.0/session/login", headers={"Authorization": basic(ADMIN_EMAIL, ADMIN_PASSWORD)}
    ).json()["session_id"]
    site.http.cookies.set(SESSION_COOKIE, api_token, domain="mfa.example.com")
    assert site.get("/account").headers["location"].startswith("/login")


# Setting a password from the mailed link --------------------------------------


def invite(site: Site, email: str = "new@example.com") -> str:
    """Create a user through the API; the path of their mailed set-password link."""
    login = site.http.get(
        "/api/1.0/session/login", headers={"Authorization": basic(ADMIN_EMAIL, ADMIN_PASSWORD)}
    )
    created = site.http.post(
        "/api/1.0/user/create",
        json={"name": "New Person", "email": email},
        headers={"X-Auth-Token": login.json()["session_id"]},
    )
    assert created.status_code == 201, created.text
    link = latest_link(site.core, email)
    assert link.startswith(SITE + "/reset-password/")
    return link.removeprefix(SITE)


def test_the_mailed_link_sets_a_password_then_goes_to_sign_in(site: Site) -> None:
    path = invite(site)
    page = site.get(path)
    assert page.status_code == 200 and "At least 12 characters" in page.text
    weak = site.submit(path, path, {"new_password": "password", "confirm_password": "password"})
    assert weak.status_code == 400 and "Too short: at least 12 characters" in weak.text
    assert 'id="new_password-error"' in weak.text
    differ = site.submit(
        path, path, {"new_password": "a fine new passphrase", "confirm_password": "other"}
    )
    assert differ.status_code == 400 and "differ" in differ.text
    done = site.submit(
        path,
        path,
        {"new_password": "a fine new passphrase", "confirm_password": "a fine new passphrase"},
    )
    assert done.headers["location"] == "/login?notice=password-set"
    assert "Your password is set" in site.get("/login?notice=password-set").text
    assert site.sign_in("new@example.com", "a fine new passphrase").headers["location"] == (
        "/account"
    )
    assert site.get(path).status_code == 404  # used once


def test_setting_a_password_without_the_csrf_token_changes_nothing(site: Site) -> None:
    path = invite(site)
    site.get(path)
    response = site.http.post(
        path,
        data={"new_password": "a fine new passphrase", "confirm_password": "a fine new passphrase"},
    )
    assert response.status_code == 403
    assert site.get(path).status_code == 200  # the link still works
    assert site.sign_in("new@example.com", "a fine new passphrase").status_code == 401


def test_forgot_password_answers_the_same_for_a_known_and_an_unknown_email(site: Site) -> None:
    known = site.submit("/forgot-password", "/forgot-password", {"email": ADMIN_EMAIL})
    unknown = site.submit("/forgot-password", "/forgot-password", {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace(ADMIN_EMAIL, "E") == unknown.text.replace("nobody@example.com", "E")
    assert latest_link(site.core, ADMIN_EMAIL)


# Second factors ---------------------------------------------------------------


def enroll_admin_totp(site: Site) -> bytes:
    """2FA on through the forced-enrollment page; the seed, read from the page."""
    edit_account(site, force_2fa=True)
    assert site.sign_in().headers["location"] == "/login?next=%2Faccount"
    page = site.get("/login?next=%2Faccount")
    assert page.headers["cache-control"] == "no-store"
    key = re.search(r'data-totp-secret="([A-Z2-7]+)"', page.text)
    assert key and "<svg" in page.text and "otpauth://totp/" in page.text
    seed = base64.b32decode(key.group(1) + "=" * (-len(key.group(1)) % 8))
    again = site.get("/login")  # a reload shows the same key
    assert key.group(1) in again.text
    code = totp.code_at(seed, site.clock.now())
    done = site.submit("/login", "/login/enroll", {"code": code, "next": "/account"})
    assert done.status_code == 200 and done.headers["cache-control"] == "no-store"
    assert len(re.findall(r"data-recovery-code>", done.text)) == 10
    assert site.get("/account").status_code == 200
    site.clock.advance(totp.PERIOD)
    return seed


def test_forced_enrollment_then_sign_in_with_a_code(site: Site) -> None:
    seed = enroll_admin_totp(site)
    site.submit("/account", "/logout", {})
    assert site.sign_in().headers["location"] == "/login?next=%2Faccount"
    wrong = site.submit("/login", "/login/code", {"code": "000000", "next": "/account"})
    assert wrong.status_code == 401 and "That code is not right" in wrong.text
    code = totp.code_at(seed, site.clock.now())
    ok = site.submit("/login", "/login/code", {"code": code, "next": "/account"})
    assert ok.headers["location"] == "/account"
    assert site.get("/account").status_code == 200


def test_a_step_posted_without_its_csrf_token_spends_no_code(site: Site) -> None:
    seed = enroll_admin_totp(site)
    site.submit("/account", "/logout", {})
    site.sign_in()
    code = totp.code_at(seed, site.clock.now())
    assert site.http.post("/login/code", data={"code": code}).status_code == 403
    ok = site.submit("/login", "/login/code", {"code": code, "next": "/account"})
    assert ok.headers["location"] == "/account"  # the code was not spent by the refused post


@pytest.mark.parametrize("ending", ["expired", "closed"])
def test_a_pending_sign_in_that_ended_returns_to_login_saying_so(site: Site, ending: str) -> None:
    edit_account(site, force_2fa=True)
    site.sign_in()
    token = csrf_of(site.get("/login?next=%2Faccount"))  # the enrollment step
    if ending == "expired":
        site.clock.advance(site.core.sessions.pending_seconds + 1)
    else:
        with site.core.store.transaction() as tx:
            tx.sessions.close([token_hash(site.core, site.session_token or "")])
    posted = site.http.post(
        "/login/enroll",
        data={"csrf_token": token, "code": "123456", "next": "/account"},
        headers={"Origin": SITE, "Sec-Fetch-Site": "same-origin"},
    )
    assert posted.status_code == 303
    assert posted.headers["location"] == "/login?next=%2Faccount&notice=expired"
    page = site.get(posted.headers["location"])
    assert page.status_code == 200
    assert "Your sign-in took too long" in page.text
    assert 'name="password"' in page.text


def test_an_unknown_page_path_is_an_html_page_with_the_page_headers(site: Site) -> None:
    for method, path, status in [
        ("GET", "/no-such-page", 404),
        ("GET", "/account/nothing/here", 404),
        ("DELETE", "/login", 405),
        ("PUT", "/forgot-password", 405),
    ]:
        response = site.http.request(method, path)
        assert response.status_code == status, (method, path)
        assert response.headers["content-type"].startswith("text/html"), path
        assert response.headers["content-security-policy"].startswith(CSP), path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "<h1>" in response.text and '<html lang="en">' in response.text
    assert "GET" in site.http.request("DELETE", "/login").headers["allow"]


def test_the_api_keeps_its_json_errors_for_unknown_paths_and_methods(site: Site) -> None:
    missing = site.get("/api/1.0/no-such-thing")
    assert missing.status_code == 404
    assert missing.json() == {"code": 4, "msg": "Not found"}
    wrong = site.http.request("DELETE", "/api/1.0/session/login")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == "application/json"
    assert wrong.json() == {"code": 2, "msg": "Method Not Allowed"}


def test_the_stylesheet_carries_the_security_headers(site: Site) -> None:
    css = site.get("/static/web.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert css.headers["x-content-type-options"] == "nosniff"
    assert css.headers["content-security-policy"].startswith(CSP)
    assert site.get("/static/nothing.css").status_code == 404
