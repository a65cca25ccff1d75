"""WCAG 2.1 AA: axe-core, run in Chromium, finds no serious or critical
violation on any page, at phone and desktop width, in light and dark mode.

``PAGES`` is the one list of pages: each entry brings the browser to its page
(with the user and state it needs); a new page is one more entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.support.axe import assert_accessible
from tests.support.browser import Admin, new_user, sign_in


def _enroll(page: Page, admin: Admin) -> str:
    """A new user whose 2FA is required: signed in up to the QR page; their email."""
    user_id, email = new_user(page, admin)
    admin.post("/user/set-mfa", {"ids": [user_id], "auth_type": "2FA", "code": ""})
    sign_in(page, email)
    expect(page.locator("[data-totp-secret]")).to_be_visible()
    return email


def _show_codes(page: Page, admin: Admin) -> str:
    """Through enrollment to the recovery codes; the email."""
    email = _enroll(page, admin)
    key = page.locator("[data-totp-secret]").inner_text().replace(" ", "")
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Turn on 2FA").click()
    expect(page.locator("[data-recovery-code]").first).to_be_visible()
    return email


def _totp_step(page: Page, admin: Admin) -> None:
    email = _show_codes(page, admin)
    page.context.clear_cookies()
    sign_in(page, email)
    expect(page.get_by_label("Code from your authenticator app")).to_be_visible()


def _recovery_step(page: Page, admin: Admin) -> None:
    _totp_step(page, admin)
    page.get_by_role("link", name="Use a recovery code").click()
    expect(page.get_by_label("Recovery code")).to_be_visible()


def _pin_step(page: Page, admin: Admin) -> None:
    user_id, email = new_user(page, admin)
    admin.post("/user/set-mfa", {"ids": [user_id], "auth_type": "PIN", "code": "20250417"})
    sign_in(page, email)
    expect(page.get_by_label("PIN")).to_be_visible()


def _forced_enrollment(page: Page, admin: Admin) -> None:
    _enroll(page, admin)


def _recovery_codes(page: Page, admin: Admin) -> None:
    _show_codes(page, admin)


def _signed_in(page: Page, admin: Admin) -> None:
    _, email = new_user(page, admin)
    sign_in(page, email)
    expect(page.locator("[data-field=email]")).to_have_text(email)


def _logout_confirm(page: Page, admin: Admin) -> None:
    _signed_in(page, admin)
    page.goto("/logout")


def _forbidden(page: Page, admin: Admin) -> None:
    page.goto("/forgot-password")
    page.locator("input[name=csrf_token]").evaluate("input => input.remove()")
    page.get_by_label("Email").fill("someone@example.com")
    page.get_by_role("button").click()
    expect(page.get_by_text("Nothing was changed")).to_be_visible()


def _forgot_sent(page: Page, admin: Admin) -> None:
    page.goto("/forgot-password")
    page.get_by_label("Email").fill("someone@example.com")
    page.get_by_role("button").click()
    expect(page.get_by_text("someone@example.com")).to_be_visible()


def _set_password(page: Page, admin: Admin) -> None:
    _, link = admin.invite(f"a11y-{uuid.uuid4().hex[:8]}@example.com")
    page.goto(link)


def _visit(path: str) -> Callable[[Page, Admin], None]:
    def visit(page: Page, admin: Admin) -> None:
        page.goto(path)

    return visit


PAGES: dict[str, Callable[[Page, Admin], None]] = {
    "sign-in": _visit("/login"),
    "forgot-password": _visit("/forgot-password"),
    "forgot-sent": _forgot_sent,
    "set-password": _set_password,
    "reset-invalid": _visit(f"/reset-password/{uuid.UUID(int=0)}"),
    "totp-step": _totp_step,
    "recovery-code-step": _recovery_step,
    "pin-step": _pin_step,
    "forced-enrollment": _forced_enrollment,
    "recovery-codes": _recovery_codes,
    "account": _signed_in,
    "logout-confirm": _logout_confirm,
    "forbidden": _forbidden,
    "not-found": _visit("/no-such-page"),
}


@pytest.mark.parametrize("name", PAGES)
def test_no_serious_or_critical_accessibility_violation(
    page: Page, admin: Admin, name: str
) -> None:
    PAGES[name](page, admin)
    assert_accessible(page)


def test_the_check_fails_on_a_violation(page: Page) -> None:
    page.goto("/login")
    page.locator("form").evaluate(
        "form => form.append(Object.assign(document.createElement('input'), {name: 'x'}))"
    )
    with pytest.raises(AssertionError, match="label"):
        assert_accessible(page)
