"""Bringing a browser to each page of the service, with the user and state the
page needs (a real server, the administrator through the JSON API). Shared
by the accessibility test and ``scripts/screenshots``, which walk every page."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pyotp
from playwright.sync_api import Page, expect

from quatrix_mfa.core.clock import FakeClock
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support import outbox
from tests.support.browser import Admin, new_user, sign_in
from tests.support.scenario import foreign_admin

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


def account_2fa_on(page: Page, admin: Admin) -> None:
    """Through enrollment and the recovery codes to the account page, 2FA on."""
    show_codes(page, admin)
    page.get_by_role("link", name="I have kept them, continue").click()
    expect(page.locator("[data-field=email]")).to_be_visible()


def account_page(path: str, two_fa: bool = False) -> Reach:
    """A user signed in (with 2FA on, if asked), on the account page ``path``."""

    def reach(page: Page, admin: Admin) -> None:
        if two_fa:
            account_2fa_on(page, admin)
        else:
            account(page, admin)
        page.goto(path)

    return reach


def as_admin(page: Page, path: str) -> None:
    """The first administrator, signed in in the browser, on ``path``."""
    page.goto("/login?next=" + path.replace("/", "%2F"))
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Admin console")).to_be_visible()


def some_users(admin: Admin, count: int = 3) -> list[str]:
    """``count`` invited users (ids): the console's lists are not empty."""
    stamp = time.monotonic_ns()
    return [admin.invite(f"user{i}-{stamp}@example.com")[0] for i in range(count)]


def admin_page(path: str) -> Reach:
    """The administrator on the console page ``path``, with a few users."""

    def reach(page: Page, admin: Admin) -> None:
        some_users(admin)
        as_admin(page, path)

    return reach


def admin_user(page: Page, admin: Admin) -> None:
    """One user's page in the console."""
    as_admin(page, f"/admin/users/{some_users(admin, 1)[0]}")


def force_2fa_preview(page: Page, admin: Admin) -> None:
    """What forcing 2FA for the account would do, before it is saved."""
    admin_page("/admin/settings")(page, admin)
    page.get_by_role("button", name="Force 2FA for everyone…").click()
    expect(page.locator("[data-impact]")).to_be_visible()


def confirm_email(page: Page, admin: Admin) -> None:
    """The page of the link mailed to a user's new address."""
    user_id, _ = new_user(page, admin)
    moved = f"moved-{time.monotonic_ns()}@example.com"
    admin.post("/user/edit", {"ids": [user_id], "email": moved})
    page.goto(f"/confirm-email/{outbox.latest_confirm_id(admin.core, moved)}")


def reset_taken(page: Page, admin: Admin) -> None:
    """The mailed link of an address another organisation's user signs in with."""
    email = f"twin-{time.monotonic_ns()}@example.com"
    foreign_admin(admin.core, FakeClock(time.time()), email)
    _, link = admin.invite(email)
    page.goto(link)
    expect(page.get_by_role("alert")).to_be_visible()


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
    "account-2fa-on": account_2fa_on,
    "account-password": account_page("/account/password"),
    "account-2fa-off": account_page("/account/2fa"),
    "account-2fa-status": account_page("/account/2fa", two_fa=True),
    "account-pin": account_page("/account/pin"),
    "account-sessions": account_page("/account/sessions"),
    "account-devices": account_page("/account/devices"),
    "admin-users": admin_page("/admin/users"),
    "admin-user-new": admin_page("/admin/users/new"),
    "admin-user": admin_user,
    "admin-settings": admin_page("/admin/settings"),
    "force-2fa-preview": force_2fa_preview,
    "admin-audit": admin_page("/admin/audit"),
    "confirm-email": confirm_email,
    "reset-taken": reset_taken,
    "logout-confirm": logout_confirm,
    "forbidden": forbidden,
    "not-found": visit("/no-such-page"),
    "recovery-started": recovery_started,
    "recovery-cancel": visit(f"/recover-mfa/cancel/{uuid.UUID(int=0)}"),
}
