"""A PostgreSQL of a test's own (initdb, pg_ctl on a free port, as Debian's
postgres user), so stopping and starting it never touches the shared server:
``serve --wait-for-db`` (tests/test_wait_for_db.py) and the database going
away under load (tests/test_database_outage.py)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class OwnPostgres:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.data = folder / "pgdata"

    def pg(self, *args: str) -> None:
        command = ["runuser", "-u", "postgres", "--", *args]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self.folder.mkdir(parents=True)
        shutil.chown(self.folder, "postgres", "postgres")
        self.pg(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        log = str(self.folder / "log")
        self.pg(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start"
        )

    def stop(self) -> None:
        self.pg(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    if not (PG_BIN / "initdb").exists():  # pragma: no cover - Debian's postgresql-15 is set up
        pytest.fail(f"{PG_BIN}/initdb is missing: install Debian's postgresql-15")
    # Outside pytest's folder, which only root may enter.
    folder = Path(tempfile.mkdtemp(prefix="qmfa-own-pg-"))
    folder.chmod(0o755)
    server = OwnPostgres(folder / "pg", free_port())
    server.init()
    yield server
    subprocess.run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(server.data),
            "-m",
            "immediate",
            "stop",
        ],
        capture_output=True,
        check=False,
        timeout=60,
    )
    shutil.rmtree(folder, ignore_errors=True)
