"""Fixtures of the page tests: in-process (httpx, no browser) on the public
URL ``https://mfa.example.com``, so cookies are ``Secure`` and ``__Host-``;
and a real server with Debian's Chromium (one server per test module, so a
module that changes the account's settings changes no other module's)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, sync_playwright

from quatrix_mfa.api.app import build_core, create_app
from quatrix_mfa.core.bootstrap import bootstrap
from quatrix_mfa.core.clock import FakeClock
from quatrix_mfa.core.context import Core
from quatrix_mfa.settings import Settings
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, fresh_database
from tests.servers import Server, init_admin, server_env
from tests.support import secrets_grep
from tests.support.browser import CHROMIUM, DESKTOP, PHONE, Admin

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

    def make(peer: str = "testclient", **overrides: Any) -> Site:
        """The pages with ``overrides`` of the settings, reached from the address ``peer``."""
        app = create_app(replace(settings, **overrides), clock=clock, background=False)
        base = overrides.get("public_url", SITE)
        http = TestClient(
            app,
            base_url=base,
            follow_redirects=False,
            raise_server_exceptions=False,
            client=(peer, 50000),
        )
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


# The browser side: one `quatrix-mfa serve` per module, one Chromium per module.


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
    context.on("request", secrets_grep.browser_request)  # what a page posts, for the grep
    opened = context.new_page()
    violations: list[str] = []
    opened.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    yield opened
    context.close()
    assert not violations, violations  # no inline script or style anywhere


@pytest.fixture
def admin(server: Server, core: Core) -> Admin:
    return Admin(server, core)
