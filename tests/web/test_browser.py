"""Every sign-in flow in a real browser (Debian's Chromium, headless, through
Playwright) against a real ``quatrix-mfa serve`` process: set a password from
the mailed link, sign in without 2FA, with TOTP (the code computed from the
key the page shows), with a recovery code, with a PIN, forced enrollment
through the QR page; a wrong code, logout, ``next=`` open redirects, a form
without its CSRF token, the cookie flags and the headers. One server and one
browser for the module; each test has its own user and a fresh context."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import Admin, new_user, sign_in, sign_out


def test_set_a_password_from_the_link_and_sign_in_without_2fa(page: Page, admin: Admin) -> None:
    _, email = new_user(page, admin)
    sign_in(page, email, path="")
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.locator("[data-field=email]")).to_have_text(email)
    expect(page.locator("[data-field='2fa']")).to_have_text("Off")
    sign_out(page)
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Faccount$"))


def test_forced_enrollment_then_a_code_a_wrong_code_and_a_recovery_code(
    page: Page, admin: Admin
) -> None:
    user_id, email = new_user(page, admin)
    admin.post("/user/set-mfa", {"ids": [user_id], "auth_type": "2FA", "code": ""})
    sign_in(page, email)
    expect(page.locator("figure.qr svg")).to_be_visible()
    expect(page.get_by_role("link", name="Open in an authenticator app")).to_have_attribute(
        "href",
        re.compile(r"^otpauth://totp/"),
    )
    key = page.locator("[data-totp-secret]").inner_text()
    assert all(len(group) <= 4 for group in key.split())
    totp = pyotp.TOTP(key.replace(" ", ""))
    page.get_by_label("Code from your authenticator app").fill(totp.now())
    page.get_by_role("button", name="Turn on 2FA").click()
    codes = page.locator("[data-recovery-code]").all_inner_texts()
    assert len(codes) == 10 and len(set(codes)) == 10
    page.get_by_role("link", name="I have kept them, continue").click()
    expect(page.locator("[data-field='2fa']")).to_contain_text("On")
    sign_out(page)

    sign_in(page, email)
    page.get_by_label("Code from your authenticator app").fill("000000")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_have_text(
        "That code is not right. Check it and try again."
    )
    # The enrollment code's step is spent; the next step's code is within the window.
    page.get_by_label("Code from your authenticator app").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("[data-field=email]")).to_have_text(email)
    sign_out(page)

    sign_in(page, email)
    page.get_by_role("link", name="Use a recovery code").click()
    page.get_by_label("Recovery code").fill(codes[0])
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("[data-field=email]")).to_have_text(email)


def test_sign_in_with_a_pin(page: Page, admin: Admin) -> None:
    user_id, email = new_user(page, admin)
    admin.post("/user/set-mfa", {"ids": [user_id], "auth_type": "PIN", "code": "20250417"})
    sign_in(page, email)
    page.get_by_label("PIN").fill("20250418")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_be_visible()
    page.get_by_label("PIN").fill("20250417")
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("[data-field=email]")).to_have_text(email)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/"])
def test_next_to_another_site_lands_on_the_account(page: Page, admin: Admin, target: str) -> None:
    _, email = new_user(page, admin)
    sign_in(page, email, path=f"/login?next={target}")
    expect(page.locator("[data-field=email]")).to_have_text(email)
    assert "evil" not in page.url


def test_a_closed_session_returns_to_the_page_after_sign_in(page: Page, admin: Admin) -> None:
    _, email = new_user(page, admin)
    page.goto("/account")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    sign_in(page, email, path="")
    assert page.url.endswith("/account")


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    page: Page, admin: Admin
) -> None:
    _, email = new_user(page, admin)
    sign_in(page, email)
    page.goto("/logout")
    page.locator("input[name=csrf_token]").evaluate("input => input.remove()")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("Nothing was changed")).to_be_visible()
    page.goto("/account")
    expect(page.locator("[data-field=email]")).to_have_text(email)  # still signed in


def test_cookie_flags_and_security_headers(page: Page, admin: Admin) -> None:
    _, email = new_user(page, admin)
    sign_in(page, email)
    response = page.goto("/account")
    assert response is not None
    headers = response.headers
    assert headers["content-security-policy"].startswith(
        "default-src 'self'; frame-ancestors 'none'"
    )
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    (session,) = [c for c in page.context.cookies() if c["name"].endswith("qmfa_session")]
    # http://127.0.0.1: no Secure, no __Host- (httpx tests check the https case).
    assert session["httpOnly"] and session["sameSite"] == "Lax" and session["path"] == "/"
    assert page.evaluate("document.cookie") == ""  # script cannot read any of ours
