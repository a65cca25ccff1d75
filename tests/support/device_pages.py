"""Trusted browsers on the pages, in-process, shared by the tests of issue
13: a user with a PIN, and the PIN step with "trust this browser"."""

from __future__ import annotations

from typing import Any

from tests.conftest import basic
from tests.support.admin import PASSWORD, add_users
from tests.web.conftest import Site

PIN = "4711"
DEVICE_COOKIE = "__Host-qmfa_device"


def user_with_pin(site: Site, prefix: str = "user") -> str:
    """The email of a new user with a password and a PIN (set through the API)."""
    (user,) = add_users(site.core, 1, prefix, password=True)
    login = site.http.get(
        "/api/1.0/session/login", headers={"Authorization": basic(user.email, PASSWORD)}
    )
    token = login.json()["session_id"]
    answer = site.http.post(
        "/api/1.0/profile/set-mfa",
        json={"auth_type": "PIN", "code": PIN},
        headers={"X-Auth-Token": token},
    )
    assert answer.status_code == 200, answer.text
    return user.email


def pin_step(site: Site, email: str, **extra: str) -> Any:
    """Sign in with the password, then the PIN step with ``extra`` fields."""
    assert site.sign_in(email, PASSWORD).status_code == 303
    return site.submit("/login", "/login/pin", {"pin": PIN, **extra})
