"""The clock-drift and used-code hints of the second-factor step in a real
browser (Debian's Chromium through Playwright) against a real server, in
English and in German (issue 13)."""

from __future__ import annotations

import re
import time

import pyotp
from playwright.sync_api import Page, expect

from tests.support.browser import Admin, new_user, sign_in, sign_out


def test_the_code_step_tells_a_clock_behind_and_a_used_code(page: Page, admin: Admin) -> None:
    user_id, email = new_user(page, admin)
    admin.post("/user/set-mfa", {"ids": [user_id], "auth_type": "2FA", "code": ""})
    sign_in(page, email)
    key = page.locator("[data-totp-secret]").inner_text().replace(" ", "")
    app = pyotp.TOTP(key)
    enrolled = app.now()
    page.get_by_label("Code from your authenticator app").fill(enrolled)
    page.get_by_role("button", name="Turn on 2FA").click()
    page.get_by_role("link", name="I have kept them, continue").click()
    sign_out(page)

    sign_in(page, email)
    # A phone three minutes behind (a step boundary may pass meanwhile: 2 to 4).
    page.get_by_label("Code from your authenticator app").fill(app.at(time.time() - 180))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_have_text(
        re.compile(
            r"^Your phone's clock seems about [234] minutes behind: set it to automatic time\.$"
        )
    )
    # The code that turned 2FA on, again, read in German.
    page.context.set_extra_http_headers({"Accept-Language": "de-DE,de;q=0.9"})
    page.locator("input[name=code]").fill(enrolled)
    page.locator("form[action='/login/code'] button[type=submit]").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Dieser Code wurde bereits verwendet: Warten Sie auf den nächsten."
    )
