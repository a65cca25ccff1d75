"""The admin console in a real browser (Debian's Chromium) against a real
server, at phone and desktop width: invite a user, search and filter, force
2FA for a selected user, force 2FA for the account through the preview (and
enroll, since it ends the admin's own session), the allow-list with a bad
entry then a good one, the audit trail with a filter. Tables scroll inside
their own box: the page itself never scrolls sideways on a 360 px phone."""

from __future__ import annotations

import re
import time

import pyotp
from playwright.sync_api import Page, expect

from quatrix_mfa.core.context import Core
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, latest_link
from tests.support.browser import Admin, new_user, sign_in

_serial = iter(range(1_000_000))


def fresh_email(kind: str) -> str:
    return f"{kind}{next(_serial)}-{time.monotonic_ns()}@example.com"


def sign_in_as_admin(page: Page, path: str = "/admin") -> None:
    page.goto(path)
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def no_sideways_scroll(page: Page) -> None:
    wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"the page scrolls sideways by {wide}px"


def invite(page: Page, email: str) -> None:
    page.get_by_role("link", name="Invite a user").click()
    page.get_by_label("Name").fill("Invited Person")
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Invite").click()


def test_invite_a_user_then_find_them_and_force_2fa_for_them(
    page: Page, admin: Admin, core: Core
) -> None:
    sign_in_as_admin(page)
    expect(page).to_have_url(re.compile(r"/admin/users$"))
    no_sideways_scroll(page)
    email = fresh_email("invited")
    invite(page, email)
    expect(page.get_by_role("status")).to_contain_text("invitation")
    assert "/reset-password/" in latest_link(core, email)

    page.get_by_role("link", name="Users").click()
    page.get_by_label("Email or name").fill(email)
    page.get_by_role("button", name="Search").click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(1)
    page.get_by_label(f"Select {email}").check()
    page.get_by_label("Action").select_option("force-2fa")
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.get_by_role("status")).to_have_text("Done.")
    expect(page.locator(f"tr[data-user='{email}'] [data-field='2fa']")).to_have_text(
        "Enrollment required · forced"
    )
    page.get_by_label("2FA").select_option("enroll")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(f"tr[data-user='{email}']")).to_be_visible()
    no_sideways_scroll(page)


def test_a_refused_action_says_which_user_and_that_nothing_changed(
    page: Page, admin: Admin
) -> None:
    email = fresh_email("plain")
    admin.invite(email)
    sign_in_as_admin(page, f"/admin/users?q={email}")
    page.get_by_label(f"Select {email}").check()
    page.get_by_label("Action").select_option("reset-2fa")
    page.get_by_role("button", name="Apply to selected").click()
    answer = page.locator(".answer")
    expect(answer).to_contain_text("Nothing was changed.")
    expect(answer).to_contain_text("2FA is not on for")
    expect(page.get_by_label(f"Select {email}")).to_be_checked()


def test_the_allow_list_refuses_a_bad_entry_then_saves_a_good_one(page: Page) -> None:
    sign_in_as_admin(page, "/admin/settings")
    page.get_by_label("Allow sign-in only from these addresses").check()
    field = page.get_by_label("Allowed addresses, one a line")
    field.fill("127.0.0.1\n10.0.0.300")
    page.get_by_role("button", name="Save allow-list").click()
    expect(page.locator("#ip_whitelist-error")).to_contain_text("10.0.0.300")
    expect(field).to_have_value("127.0.0.1\n10.0.0.300")
    expect(field).to_be_focused()
    field.fill("127.0.0.1\n10.0.0.0/24")
    page.get_by_role("button", name="Save allow-list").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(field).to_have_value("127.0.0.1\n10.0.0.0/24")
    # Off again, so the other tests of this module sign in as before.
    page.get_by_label("Allow sign-in only from these addresses").uncheck()
    page.get_by_role("button", name="Save allow-list").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")


def test_the_audit_trail_filtered_by_user(page: Page, admin: Admin) -> None:
    email = fresh_email("audited")
    admin.invite(email)
    sign_in_as_admin(page, "/admin/audit")
    page.get_by_label("User (email)").fill(email)
    page.get_by_role("button", name="Show").click()
    expect(page.locator("tr[data-event='admin.user_created']")).to_have_count(1)
    expect(page.locator("tbody tr")).to_have_count(1)
    no_sideways_scroll(page)


def test_force_2fa_for_the_account_through_the_preview(page: Page, admin: Admin) -> None:
    """A second administrator forces 2FA: the preview counts first, then
    their own session ends too and they enroll; at the end they stop forcing
    it, so the module's other tests sign in as before."""
    boss_id, boss = new_user(page, admin)
    admin.post("/user/edit", {"ids": [boss_id], "super_admin": "Y"})
    sign_in(page, boss, "/admin/settings")
    expect(page.locator("[data-field='force-2fa']")).to_have_text(
        "Each user chooses whether to use 2FA."
    )
    page.get_by_role("button", name="Force 2FA for everyone…").click()
    expect(page.locator("[data-impact]")).to_contain_text(
        re.compile(r"\d+ of \d+ users have no 2FA")
    )
    expect(page.get_by_role("cell", name=boss, exact=True)).to_be_visible()
    no_sideways_scroll(page)
    page.get_by_role("button", name="Force 2FA now").click()

    # Forcing ended every session of a user without 2FA, this one's too.
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fadmin%2Fsettings"))
    sign_in(page, boss, "")
    key = page.locator("[data-totp-secret]").inner_text().replace(" ", "")
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Turn on 2FA").click()
    page.get_by_role("link", name="I have kept them, continue").click()
    expect(page.locator("[data-field='force-2fa']")).to_have_text("Every user must use 2FA.")
    page.get_by_role("button", name="Stop forcing 2FA").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.locator("[data-field='force-2fa']")).to_have_text(
        "Each user chooses whether to use 2FA."
    )
