"""Fixtures: a real database per test (SQLite by default, PostgreSQL with
``--db=postgresql``), a fake clock, and the app driven in-process by httpx
with every response checked against the upstream spec."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from quatrix_mfa.api.app import build_core, create_app
from quatrix_mfa.core.bootstrap import bootstrap
from quatrix_mfa.core.clock import FakeClock
from quatrix_mfa.core.context import Core
from quatrix_mfa.core.crypto import Argon2Parameters
from quatrix_mfa.keys import create_key_file
from quatrix_mfa.settings import Settings
from quatrix_mfa.storage import migrate
from quatrix_mfa.storage.tables import metadata
from tests import spec
from tests.support import codes
from tests.support.encoding import basic as basic  # also imported from here
from tests.support.http import HttpDriver
from tests.support.outbox import latest_link as latest_link  # also imported from here
from tests.support.scenario import ADMIN_EMAIL, ADMIN_PASSWORD, Scenario

# The whole-run secrets grep (issue 15, item 2): these hooks collect every
# secret and log line of the run and fail it if a line holds a secret.
from tests.support.secrets_grep import pytest_runtest_protocol as pytest_runtest_protocol
from tests.support.secrets_grep import pytest_sessionfinish as pytest_sessionfinish
from tests.support.secrets_grep import pytest_sessionstart as pytest_sessionstart
from tests.support.secrets_grep import pytest_terminal_summary as pytest_terminal_summary

# Cheap argon2 in tests: the parameters are configuration, the code path is the same.
FAST_ARGON2 = Argon2Parameters(time_cost=1, memory_kib=64, parallelism=1)
PG_ADMIN_URL = os.environ.get(
    "QUATRIX_MFA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
T0 = 1_800_000_010.0  # 10 s into a TOTP step


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        default=os.environ.get("QUATRIX_MFA_TEST_DB", "sqlite"),
        choices=["sqlite", "postgresql"],
        help="database the suite runs on",
    )


def only_on(kind: str, reason: str) -> pytest.MarkDecorator:
    """Skip unless the suite runs on ``kind`` (``--db``), saying why: for a test
    that on the other database would pass while checking nothing."""
    return pytest.mark.skipif(f"config.getoption('--db') != {kind!r}", reason=reason)


@pytest.fixture(scope="session")
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--db"))


@pytest.fixture(scope="session")
def database_template(db_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database for this run: a SQLite file to copy, or a fresh PostgreSQL database."""
    if db_kind == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.db"
        migrate.upgrade(f"sqlite:///{path}")
        yield str(path)
        return
    name = f"qmfa_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    migrate.upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def fresh_database(db_kind: str, database_template: str, folder: Path) -> str:
    """A migrated, empty database: a copy of the SQLite template, or the run's
    PostgreSQL database with every table emptied."""
    if db_kind == "sqlite":
        path = folder / "quatrix-mfa.db"
        shutil.copy(database_template, path)
        return f"sqlite:///{path}"
    engine = create_engine(database_template)
    with engine.begin() as conn:
        # schema_compat describes the schema (like alembic_version), not data.
        kept = {"schema_compat"}
        tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables if t.name not in kept)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return database_template


@pytest.fixture
def database_url(db_kind: str, database_template: str, tmp_path: Path) -> str:
    return fresh_database(db_kind, database_template, tmp_path)


# The bound of a unit of work on PostgreSQL (QUATRIX_MFA_DB_TIMEOUT_SECONDS)
# for the apps and cores made in the test process. The server ends a
# transaction left idle that long, and the client cuts a connection out that
# long: with the default 5 s, a stall of the test process itself (a full
# garbage collection of a long run's heap on a loaded CI box) looked like an
# outage, and a test's setup got a 503 or "idle-in-transaction timeout" (seen
# twice in 1,900 tests). The bound is the subject of tests/storage/test_stall.py
# and tests/test_database_outage.py, which set their own.
TEST_DB_TIMEOUT_SECONDS = 60


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """A new deployment: its key file made as ``init`` makes it."""
    made = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        argon2=FAST_ARGON2,
        public_url="https://mfa.example.com",
        db_timeout_seconds=TEST_DB_TIMEOUT_SECONDS,
    )
    create_key_file(made.key_file)
    return made


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def core(settings: Settings, clock: FakeClock) -> Iterator[Core]:
    built = build_core(settings, clock)
    yield built
    built.store.dispose()  # type: ignore[attr-defined]


@dataclass
class Api:
    """The HTTP API in-process; every response is checked against the spec."""

    http: TestClient
    clock: FakeClock
    core: Core

    def get(self, path: str, token: str | None = None, **kw: Any) -> Any:
        return self.http.get(path, headers=_headers(token, kw.pop("headers", None)), **kw)

    def post(self, path: str, json: Any = None, token: str | None = None, **kw: Any) -> Any:
        return self.http.post(
            path, json=json, headers=_headers(token, kw.pop("headers", None)), **kw
        )

    def login(self, email: str, password: str, **kw: Any) -> Any:
        return self.get("/session/login", headers={"Authorization": basic(email, password)}, **kw)

    def full_session(self, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> str:
        response = self.login(email, password)
        assert response.status_code == 200, response.text
        return str(response.json()["session_id"])

    @property
    def scenario(self) -> Scenario:
        """The scenario builder (tests/support/scenario.py) over this API."""
        return Scenario(HttpDriver(self))

    def code(self, secret_b32: str, offset_steps: int = 0) -> str:
        return codes.totp_code(self.clock, secret_b32, offset_steps)

    def enroll_totp(self, token: str) -> tuple[str, str, list[str]]:
        """Enroll 2FA on ``token``'s user: (new token, secret, recovery codes)."""
        return self.scenario.enroll_totp(token)

    def create_user(
        self,
        admin_token: str,
        email: str,
        password: str = "another good password",
        super_admin: str = "N",
    ) -> str:
        """Create a user as admin and set their password through the mailed link."""
        return self.scenario.create_user(
            admin_token, email, password, super_admin=super_admin == "Y"
        )


def _headers(token: str | None, extra: dict[str, str] | None) -> dict[str, str]:
    headers = dict(extra or {})
    if token is not None:
        headers["X-Auth-Token"] = token
    return headers


def alive(api: Api, token: str) -> bool:
    """True while ``token`` is a live session (full or pending)."""
    return bool(api.get("/session/login", token).status_code in (200, 207))


def error(response: Any, status: int, code: int) -> dict[str, Any]:
    """Assert an ErrorModel answer with ``status`` and ``code``; returns its body."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


@pytest.fixture
def make_api(settings: Settings, clock: FakeClock) -> Iterator[Any]:
    clients: list[TestClient] = []

    def make(peer: str = "testclient", **overrides: Any) -> Api:
        """The app with ``overrides`` of the settings, reached from the address ``peer``."""
        app = create_app(replace(settings, **overrides), clock=clock, background=False)
        http = TestClient(
            app,
            base_url="http://testserver/api/1.0",
            raise_server_exceptions=False,
            client=(peer, 50000),
        )
        http.event_hooks["response"] = [_check_spec]
        http.__enter__()
        clients.append(http)
        return Api(http, clock, app.state.core)

    yield make
    for http in clients:
        http.__exit__(None, None, None)


def _check_spec(response: Any) -> None:
    response.read()
    spec.check(response)


@pytest.fixture
def api(make_api: Any) -> Api:
    built: Api = make_api()
    result = bootstrap(built.core, ADMIN_EMAIL, "Example", ADMIN_PASSWORD)
    assert result.created
    return built


@pytest.fixture
def admin_token(api: Api) -> str:
    return api.full_session()
