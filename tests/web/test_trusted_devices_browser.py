"""Trusted browsers (issue 13) in a real browser (Debian's Chromium through
Playwright) against a real ``quatrix-mfa serve``: "Trust this browser for N
days" on the last sign-in step sets an HttpOnly cookie, and the next sign-in
with the password skips the step; the account page lists the browser and
revokes it; an administrator sets the days and revokes a user's browsers."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, basic
from tests.support.browser import PASSWORD, Admin, new_user, sign_in, sign_out

PIN = "4711"


def user_with_pin(page: Page, admin: Admin) -> tuple[str, str]:
    """A user who set their password in the browser and a PIN through the API."""
    user_id, email = new_user(page, admin)
    api = admin.server.api
    token = httpx.get(
        f"{api}/session/login", headers={"Authorization": basic(email, PASSWORD)}
    ).json()["session_id"]
    answer = httpx.post(
        f"{api}/profile/set-mfa",
        json={"auth_type": "PIN", "code": PIN},
        headers={"X-Auth-Token": token},
    )
    assert answer.status_code == 200, answer.text
    return user_id, email


def pin_step(page: Page, email: str, *, trust: bool) -> None:
    sign_in(page, email)
    expect(page.get_by_role("heading", name="Enter your PIN")).to_be_visible()
    box = page.get_by_label("Trust this browser for 30 days")
    expect(box).to_be_visible()
    if trust:
        box.check()
    page.get_by_label("PIN").fill(PIN)
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("[data-field=email]")).to_have_text(email)


def test_a_trusted_browser_skips_the_pin_until_revoked(page: Page, admin: Admin) -> None:
    _, email = user_with_pin(page, admin)
    pin_step(page, email, trust=True)
    (cookie,) = [c for c in page.context.cookies() if c["name"].endswith("qmfa_device")]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    assert cookie["expires"] > 0  # outlives the browser session

    sign_out(page)
    sign_in(page, email)  # the password alone now
    expect(page.locator("[data-field=email]")).to_have_text(email)

    page.get_by_role("link", name="Trusted browsers").click()
    device = page.locator("[data-device]")
    expect(device).to_have_count(1)
    expect(device.locator("[data-field=label]")).to_have_text("Chrome on Linux")
    page.get_by_role("button", name="Revoke this browser").click()
    expect(page.get_by_text("That browser is no longer trusted.")).to_be_visible()
    expect(page.get_by_text("No browser is trusted.")).to_be_visible()

    sign_out(page)
    sign_in(page, email)
    expect(page.get_by_role("heading", name="Enter your PIN")).to_be_visible()


def test_without_the_box_the_next_sign_in_asks_again(page: Page, admin: Admin) -> None:
    _, email = user_with_pin(page, admin)
    pin_step(page, email, trust=False)
    assert not [c for c in page.context.cookies() if c["name"].endswith("qmfa_device")]
    sign_out(page)
    sign_in(page, email)
    expect(page.get_by_role("heading", name="Enter your PIN")).to_be_visible()


def sign_in_as_admin(page: Page) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="Admin")).to_be_visible()


def test_an_admin_sees_and_revokes_a_users_trusted_browsers(page: Page, admin: Admin) -> None:
    user_id, email = user_with_pin(page, admin)
    pin_step(page, email, trust=True)
    sign_out(page)

    sign_in_as_admin(page)
    page.goto(f"/admin/users/{user_id}")
    section = page.locator("[data-devices]")
    expect(section.locator("[data-device]")).to_have_count(1)
    expect(section).to_contain_text("Chrome on Linux")
    section.get_by_role("button", name="Revoke all trusted browsers").click()
    expect(page.locator("[data-devices]")).to_contain_text("No trusted browsers.")


def test_an_admin_sets_the_days(page: Page, admin: Admin) -> None:
    sign_in_as_admin(page)
    page.goto("/admin/settings")
    field = page.get_by_label("Days a trusted browser skips the second factor")
    expect(field).to_have_value("30")
    field.fill("7")
    page.get_by_role("button", name="Save trusted browsers setting").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    expect(page.get_by_label("Days a trusted browser skips the second factor")).to_have_value("7")
    settings = httpx.get(f"{admin.server.api}/settings", headers={"X-Auth-Token": admin.token})
    assert settings.json()["trusted_device_days"] == 7
    admin.post("/settings/set", {"trusted_device_days": 30})  # as the other tests expect


def test_another_user_signing_in_on_the_same_browser_keeps_the_first_users_trust(
    page: Page, admin: Admin
) -> None:
    _, anna = user_with_pin(page, admin)
    _, bert = user_with_pin(page, admin)
    pin_step(page, anna, trust=True)
    sign_out(page)
    pin_step(page, bert, trust=False)  # Anna's cookie came along and was refused for Bert
    assert [c for c in page.context.cookies() if c["name"].endswith("qmfa_device")]
    sign_out(page)
    sign_in(page, anna)  # the password alone, as before Bert came
    expect(page.locator("[data-field=email]")).to_have_text(anna)
