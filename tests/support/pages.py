"""Bringing a browser to each page of the service, with the user and state the
page needs (a real server, the administrator through the JSON API). Shared
by the accessibility test and ``scripts/screenshots``, which walk every page."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pyotp
from playwright.sync_api import Page, expect

from tests.support.browser import Admin, new_user, sign_in

Reach = Callable[[Page, Admin], None]


def enroll(page: Page, admin: Admin, email: str | None = None) -> str:
    """A new user whose 2FA is required, signed in up to the QR page; their email."""
    user_id, email = new_user(page, admin, email)
    admin.post("/user/set-mfa", {"ids": [user_id], "auth_type": "2FA", "code": ""})
    sign_in(page, email)
    expect(page.locator("[data-totp-secret]")).to_be_visible()
    return email


def show_codes(page: Page, admin: Admin, email: str | None = None) -> str:
    """Through enrollment to the recovery codes (shown once); the email."""
    email = enroll(page, admin, email)
    key = page.locator("[data-totp-secret]").inner_text().replace(" ", "")
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Turn on 2FA").click()
    expect(page.locator("[data-recovery-code]").first).to_be_visible()
    return email


def forced_enrollment(page: Page, admin: Admin) -> None:
    enroll(page, admin)


def recovery_codes(page: Page, admin: Admin) -> None:
    show_codes(page, admin)


def totp_step(page: Page, admin: Admin) -> None:
    """A user with 2FA on, signing in again: asked for the app's code."""
    email = show_codes(page, admin)
    page.context.clear_cookies()
    sign_in(page, email)
    expect(page.get_by_label("Code from your authenticator app")).to_be_visible()


def recovery_step(page: Page, admin: Admin) -> None:
    totp_step(page, admin)
    page.get_by_role("link", name="Use a recovery code").click()
    expect(page.get_by_label("Recovery code")).to_be_visible()


def pin_step(page: Page, admin: Admin) -> None:
    user_id, email = new_user(page, admin)
    admin.post("/user/set-mfa", {"ids": [user_id], "auth_type": "PIN", "code": "20250417"})
    sign_in(page, email)
    expect(page.get_by_label("PIN")).to_be_visible()


def account(page: Page, admin: Admin, email: str | None = None) -> None:
    """Signed in (no 2FA), on the account page."""
    _, email = new_user(page, admin, email)
    sign_in(page, email)
    expect(page.locator("[data-field=email]")).to_have_text(email)


def logout_confirm(page: Page, admin: Admin) -> None:
    account(page, admin)
    page.goto("/logout")


def forbidden(page: Page, admin: Admin) -> None:
    """A form posted without its CSRF token: the 403 page."""
    page.goto("/forgot-password")
    page.locator("input[name=csrf_token]").evaluate("input => input.remove()")
    page.get_by_label("Email").fill("someone@example.com")
    page.get_by_role("button").click()
    expect(page.get_by_text("Nothing was changed")).to_be_visible()


def forgot_sent(page: Page, admin: Admin) -> None:
    page.goto("/forgot-password")
    page.get_by_label("Email").fill("someone@example.com")
    page.get_by_role("button").click()
    expect(page.get_by_text("someone@example.com")).to_be_visible()


def set_password(page: Page, admin: Admin) -> None:
    """The page the mailed link opens."""
    _, link = admin.invite(f"invited-{uuid.uuid4().hex[:8]}@example.com")
    page.goto(link)


def recovery_started(page: Page, admin: Admin) -> None:
    """At the PIN step, "Lost your device?": the recovery is started."""
    pin_step(page, admin)
    page.get_by_role("button", name="Lost your device? Recover access").click()
    expect(page.get_by_role("status")).to_be_visible()


def visit(path: str) -> Reach:
    """Just open ``path``."""

    def reach(page: Page, admin: Admin) -> None:
        page.goto(path)

    return reach


# Every page there is, by name; a new page is one more entry.
PAGES: dict[str, Reach] = {
    "sign-in": visit("/login"),
    "forgot-password": visit("/forgot-password"),
    "forgot-sent": forgot_sent,
    "set-password": set_password,
    "reset-invalid": visit(f"/reset-password/{uuid.UUID(int=0)}"),
    "totp-step": totp_step,
    "recovery-code-step": recovery_step,
    "pin-step": pin_step,
    "forced-enrollment": forced_enrollment,
    "recovery-codes": recovery_codes,
    "account": account,
    "logout-confirm": logout_confirm,
    "forbidden": forbidden,
    "not-found": visit("/no-such-page"),
    "recovery-started": recovery_started,
    "recovery-cancel": visit(f"/recover-mfa/cancel/{uuid.UUID(int=0)}"),
}
