"""Driving the pages in a real browser (Debian's Chromium through Playwright)
against a real ``quatrix-mfa serve`` process: the administrator through the
JSON API, a person through the pages. Fixtures live in ``tests/web/conftest.py``."""

from __future__ import annotations

import time
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from quatrix_mfa.core.context import Core
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, basic, latest_link
from tests.servers import Server

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "a long browser passphrase"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}


class Admin:
    """The administrator, through the JSON API."""

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


_serial = iter(range(1_000_000))


def new_user(page: Page, admin: Admin, email: str | None = None) -> tuple[str, str]:
    """A user who set their password through the mailed link, in the browser
    (``email``, or a new one)."""
    email = email or f"person{next(_serial)}-{time.monotonic_ns()}@example.com"
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
