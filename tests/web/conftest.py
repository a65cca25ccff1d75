"""The pages in-process (httpx, no browser) on the public URL
``https://mfa.example.com``, so cookies are ``Secure`` and ``__Host-``."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from quatrix_mfa.api.app import create_app
from quatrix_mfa.core.bootstrap import bootstrap
from quatrix_mfa.core.clock import FakeClock
from quatrix_mfa.core.context import Core
from quatrix_mfa.settings import Settings
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

SITE = "https://mfa.example.com"
SESSION_COOKIE = "__Host-qmfa_session"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: Any) -> str:
    """The CSRF token of the (first) form on ``page``."""
    found = _CSRF.search(page.text)
    assert found, page.text
    return html.unescape(found.group(1))


@dataclass
class Site:
    """One browser's worth of cookies against the pages, in-process."""

    http: TestClient
    core: Core
    clock: FakeClock

    def get(self, path: str, **kw: Any) -> Any:
        return self.http.get(path, **kw)

    def submit(self, page_path: str, action: str, data: dict[str, str], **kw: Any) -> Any:
        """GET ``page_path``, then post ``data`` to ``action`` with its CSRF token,
        as a browser sends our own form (same-origin)."""
        token = csrf_of(self.get(page_path))
        headers = {"Origin": SITE, "Sec-Fetch-Site": "same-origin", **kw.pop("headers", {})}
        return self.http.post(action, data={"csrf_token": token, **data}, headers=headers, **kw)

    def sign_in(
        self, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD, next: str = ""
    ) -> Any:
        page = "/login" + (f"?next={next}" if next else "")
        data = {"email": email, "password": password, "next": next}
        return self.submit(page, "/login", data)

    @property
    def session_token(self) -> str | None:
        value = self.http.cookies.get(SESSION_COOKIE)
        return str(value) if value else None


@pytest.fixture
def make_site(settings: Settings, clock: FakeClock) -> Iterator[Any]:
    clients: list[TestClient] = []

    def make(**overrides: Any) -> Site:
        app = create_app(replace(settings, **overrides), clock=clock, background=False)
        base = overrides.get("public_url", SITE)
        http = TestClient(app, base_url=base, follow_redirects=False, raise_server_exceptions=False)
        http.__enter__()
        clients.append(http)
        return Site(http, app.state.core, clock)

    yield make
    for http in clients:
        http.__exit__(None, None, None)


@pytest.fixture
def site(make_site: Any) -> Site:
    built: Site = make_site()
    assert bootstrap(built.core, ADMIN_EMAIL, "Example", ADMIN_PASSWORD).created
    return built
