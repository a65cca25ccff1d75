"""The account pages in a real browser (Debian's Chromium through Playwright,
at phone and desktop width) against a real ``quatrix-mfa serve``: turn on
2FA from the account page and keep the recovery codes (the download is a
real file), get a new set, set and remove a PIN, change the password and
sign in with it, sign out another browser from the sessions page."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pyotp
from playwright.sync_api import Browser, Page, expect

from tests.servers import Server
from tests.support.browser import PASSWORD, Admin, new_user, sign_in, sign_out


def test_turn_on_2fa_keep_the_codes_and_get_a_new_set(page: Page, admin: Admin) -> None:
    _, email = new_user(page, admin)
    sign_in(page, email)
    page.get_by_role("link", name="Two-factor authentication and recovery codes").click()
    key = page.locator("[data-totp-secret]").inner_text()
    assert all(len(group) <= 4 for group in key.split())
    totp = pyotp.TOTP(key.replace(" ", ""))
    page.get_by_label("Code from your authenticator app").fill(totp.now())
    page.get_by_role("button", name="Turn on 2FA").click()

    codes = page.locator("[data-recovery-code]").all_inner_texts()
    assert len(codes) == 10
    expect(page.get_by_role("button", name="Print")).to_be_visible()  # print.js ran
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as a text file").click()
    assert download.value.suggested_filename == "quatrix-mfa-recovery-codes.txt"
    saved = Path(download.value.path()).read_text()
    assert all(code in saved for code in codes)

    page.get_by_role("link", name="I have kept them, continue").click()
    expect(page.locator("[data-field=codes-left]")).to_have_text("10")
    # The enrollment code's step is spent; the next step's code is within the window.
    page.get_by_label("Code from your authenticator app").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Get new recovery codes").click()
    expect(page.get_by_role("heading", name="Your new recovery codes")).to_be_visible()
    new = page.locator("[data-recovery-code]").all_inner_texts()
    assert len(new) == 10 and not set(new) & set(codes)


def test_set_and_remove_a_pin(page: Page, admin: Admin) -> None:
    _, email = new_user(page, admin)
    sign_in(page, email)
    page.goto("/account/pin")
    expect(page.get_by_text("4 to 16 digits")).to_be_visible()
    page.get_by_label("New PIN").fill("12")
    page.get_by_role("button", name="Set PIN").click()
    expect(page.get_by_role("alert")).to_contain_text("4 to 16 digits")
    expect(page.get_by_label("New PIN")).to_be_focused()  # focus on the first error
    page.get_by_label("New PIN").fill("4711")
    page.get_by_role("button", name="Set PIN").click()
    expect(page.get_by_text("Your PIN is set")).to_be_visible()
    page.get_by_role("button", name="Remove PIN").click()
    expect(page.get_by_text("You have no PIN")).to_be_visible()


def test_change_the_password_then_sign_in_with_it(page: Page, admin: Admin) -> None:
    _, email = new_user(page, admin)
    sign_in(page, email)
    page.get_by_role("link", name="Change your password").click()
    new = "a changed browser passphrase"
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill(new)
    page.get_by_label("New password again").fill(new)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Your password is changed")).to_be_visible()
    sign_out(page)
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(new)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("[data-field=email]")).to_have_text(email)


def test_sign_out_another_browser_from_the_sessions_page(
    page: Page, admin: Admin, browser: Browser, server: Server
) -> None:
    _, email = new_user(page, admin)
    other = browser.new_context(base_url=server.root)
    try:
        elsewhere = other.new_page()
        sign_in(elsewhere, email)
        expect(elsewhere.locator("[data-field=email]")).to_have_text(email)
        sign_in(page, email)
        page.get_by_role("navigation").get_by_role("link", name="Sessions").click()
        expect(page.locator("[data-session]")).to_have_count(2)
        expect(page.locator("[data-current]")).to_contain_text("This browser")
        page.get_by_role("button", name="Sign out this session").click()
        expect(page.get_by_text("That session is signed out")).to_be_visible()
        expect(page.locator("[data-session]")).to_have_count(1)
        elsewhere.goto("/account")
        expect(elsewhere).to_have_url(re.compile(r"/login\?next=%2Faccount$"))
    finally:
        other.close()
