"""The ``quatrix-mfa`` command line run as a real subprocess on a test's data
folder and database (:class:`Cli`), and the in-process API on the same
database (``open_api``): shared by tests/test_cli.py and tests/test_cli_users.py."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from quatrix_mfa.api.app import create_app
from quatrix_mfa.core.clock import FakeClock
from quatrix_mfa.settings import Settings
from tests import spec
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, FAST_ARGON2, Api

LINK = re.compile(r"(https?://\S+/reset-password/([0-9a-f-]{36}))")


@dataclass
class Cli:
    data_dir: Path
    database_url: str | None  # None: the default SQLite file in the data folder

    @property
    def effective_url(self) -> str:
        return self.settings().effective_database_url

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUATRIX_MFA_")}
        env.update(
            QUATRIX_MFA_DATA_DIR=str(self.data_dir),
            QUATRIX_MFA_ARGON2_MEMORY_KIB="64",
            QUATRIX_MFA_ARGON2_TIME_COST="1",
        )
        if self.database_url:
            env["QUATRIX_MFA_DATABASE_URL"] = self.database_url
        env.update({f"QUATRIX_MFA_{k}": v for k, v in extra.items()})
        return env

    def run(self, *args: str, stdin: str | None = None, **extra: str) -> Any:
        return subprocess.run(
            [sys.executable, "-m", "quatrix_mfa.cli", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env(**extra),
            timeout=120,
            check=False,
        )

    def init(self, password: str | None = ADMIN_PASSWORD) -> Any:
        if password is None:
            result = self.run("init", "--email", ADMIN_EMAIL)
        else:
            result = self.run(
                "init", "--email", ADMIN_EMAIL, "--password-stdin", stdin=password + "\n"
            )
        assert result.returncode == 0, result.stderr
        return result

    def settings(self) -> Settings:
        return Settings(
            data_dir=self.data_dir, database_url=self.database_url or "", argon2=FAST_ARGON2
        )

    def scalar(self, sql: str) -> Any:
        engine = create_engine(self.effective_url)
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql)).scalar()
        finally:
            engine.dispose()


@pytest.fixture
def cli(tmp_path: Path, db_kind: str, request: pytest.FixtureRequest) -> Cli:
    url = str(request.getfixturevalue("database_url")) if db_kind == "postgresql" else None
    return Cli(tmp_path / "data", url)


@contextlib.contextmanager
def in_process_apis() -> Iterator[Callable[[Cli], Api]]:
    """Opens in-process apps on a CLI's database and key file, sharing one fake clock."""
    opened: list[TestClient] = []
    # The CLI stamps rows with the real time: start there, 10 s into a TOTP step.
    clock = FakeClock(time.time() // 30 * 30 + 10)

    def open_(cli: Cli) -> Api:
        app = create_app(cli.settings(), clock=clock, background=False)
        http = TestClient(app, base_url="http://testserver/api/1.0", raise_server_exceptions=False)
        http.event_hooks["response"] = [lambda r: (r.read(), spec.check(r))]
        http.__enter__()
        opened.append(http)
        return Api(http, clock, app.state.core)

    try:
        yield open_
    finally:
        for http in opened:
            http.__exit__(None, None, None)


@pytest.fixture
def open_api(cli: Cli) -> Iterator[Any]:
    """In-process apps on the CLI's database and key file, sharing one fake clock."""
    with in_process_apis() as open_:
        yield lambda: open_(cli)


def refused(result: Any, *names: str) -> str:
    """Exit 2 and exactly one line on stderr containing each of ``names``."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(lines) == 1, result.stderr
    for name in names:
        assert name in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    return str(lines[0])
