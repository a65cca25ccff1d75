"""``quatrix-mfa`` as a real process on a test's data folder and database
(tests/test_cli.py, tests/test_startup.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from quatrix_mfa.settings import Settings
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, FAST_ARGON2


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
