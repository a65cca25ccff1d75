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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from quatrix_mfa.api.app import build_core
from quatrix_mfa.core.context import Core
from quatrix_mfa.settings import Settings
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, basic, fresh_database, latest_link
from tests.servers import Server, init_admin, server_env

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "a long browser passphrase"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def server(
    db_kind: str, database_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    folder: Path = tmp_path_factory.mktemp("web-server")
    url = fresh_database(db_kind, database_template, folder) if db_kind == "postgresql" else ""
    env = server_env(folder, db_kind, url)
    init_admin(env)
    running = Server(env, "web")
    running.start()
    running.wait_healthy()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def core(server: Server) -> Iterator[Core]:
    """A core on the server's database, to read the outbox as the tests of the API do."""
    built = build_core(Settings.from_env(server.env))
    yield built
    built.store.dispose()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture(params=[PHONE, DESKTOP], ids=["phone", "desktop"])
def page(browser: Browser, server: Server, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(base_url=server.root, viewport=request.param)
    opened = context.new_page()
    violations: list[str] = []
    opened.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    yield opened
    context.close()
    assert not violations, violations  # no inline script or style anywhere


class Admin:
    """The administrator, through the JSON API (the admin pages are later work)."""

    def __init__(self, server: Server, core: Core) -> None:
        self.server, self.core = server, core
        login = httpx.get(
            f"{server.api}/session/login",
            headers={"Authorization": basic(ADMIN_EMAIL, ADMIN_PASSWORD)},
        )
        self.token = login.json()["session_id"]

    def post(self, path: str, body: Any) -> Any:
        response = httpx.post(
            f"{self.server.api}{path}", json=body, headers={"X-Auth-Token": self.token}
        )
        assert response.status_code < 300, response.text
        return response.json()

    def invite(self, email: str) -> tuple[str, str]:
        """Create a user; their id and the path of the mailed set-password link."""
        user_id = self.post("/user/create", {"name": email.split("@")[0], "email": email})["id"]
        link = latest_link(self.core, email)
        return user_id, "/reset-password/" + link.rsplit("/", 1)[1]


@pytest.fixture
def admin(server: Server, core: Core) -> Admin:
    return Admin(server, core)


_serial = iter(range(1_000_000))


def new_user(page: Page, admin: Admin) -> tuple[str, str]:
    """A user who set their password through the mailed link, in the browser."""
    email = f"person{next(_serial)}-{time.monotonic_ns()}@example.com"
    user_id, link = admin.invite(email)
    page.goto(link)
    expect(page.get_by_text("At least 12 characters")).to_be_visible()
    page.get_by_label("New password", exact=True).fill(PASSWORD)
    page.get_by_label("New password again").fill(PASSWORD)
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_text("Your password is set")).to_be_visible()
    return user_id, email


def sign_in(page: Page, email: str, path: str = "/login") -> None:
    if path:
        page.goto(path)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def sign_out(page: Page) -> None:
    page.goto("/account")
    page.locator("main").get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out")).to_be_visible()


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
