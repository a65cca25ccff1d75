"""Issue 12 in a real browser (Chromium) at phone and desktop width, against
a real server: during a 2FA grace period a user signs in and may turn 2FA
on now or later; a user at the PIN step who lost the device starts a
recovery, and the mailed link's page cancels it."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from quatrix_mfa.core.context import Core
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support import outbox
from tests.support.browser import Admin, new_user, sign_in


def no_sideways_scroll(page: Page) -> None:
    wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"the page scrolls sideways by {wide}px"


def test_during_the_grace_period_a_user_chooses_to_turn_2fa_on_later(
    page: Page, admin: Admin
) -> None:
    admin.post("/settings/set", {"auth_methods": ["2FA"], "mfa_grace_days": 14})
    _, email = new_user(page, admin)
    sign_in(page, email, "/login?next=/account")
    expect(page).to_have_url(re.compile(r"/login/2fa-later"))
    expect(page.get_by_role("link", name="Turn on 2FA now")).to_be_visible()
    no_sideways_scroll(page)
    page.get_by_role("link", name="Later (14 days left)").click()
    expect(page).to_have_url(re.compile(r"/account$"))


def test_a_lost_device_recovery_is_started_on_the_pin_step_and_cancelled_by_its_link(
    page: Page, admin: Admin, core: Core
) -> None:
    user_id, email = new_user(page, admin)
    admin.post("/user/set-mfa", {"ids": [user_id], "auth_type": "PIN", "code": "246813579"})
    sign_in(page, email)
    expect(page.get_by_label("PIN")).to_be_visible()
    page.get_by_role("button", name="Lost your device? Recover access").click()
    expect(page.get_by_role("status")).to_contain_text("A recovery was started")
    no_sideways_scroll(page)
    page.goto(f"/recover-mfa/cancel/{outbox.latest_recovery_cancel_id(core, email)}")
    page.get_by_role("button", name="Cancel the recovery").click()
    expect(page.get_by_role("status")).to_contain_text("Your second factors stay as they are")


def test_the_settings_page_shows_the_deadline_and_the_recovery_switch(
    page: Page, admin: Admin
) -> None:
    admin.post("/settings/set", {"auth_methods": ["2FA"], "mfa_grace_days": 30})
    page.goto("/admin/settings")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Later (30 days left)").click()  # the admin has no 2FA either
    expect(page.get_by_text("may still sign in without it until")).to_be_visible()
    switch = page.get_by_label(re.compile("may recover access themselves"))
    expect(switch).to_be_checked()
    switch.uncheck()
    page.get_by_role("button", name="Save recovery setting").click()
    expect(page.get_by_label(re.compile("may recover access themselves"))).not_to_be_checked()
    page.get_by_label(re.compile("may recover access themselves")).check()
    page.get_by_role("button", name="Save recovery setting").click()
    no_sideways_scroll(page)
