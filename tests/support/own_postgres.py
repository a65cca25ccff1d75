"""A PostgreSQL of a test's own (initdb, pg_ctl on a free port, as Debian's
postgres user), so stopping and starting it never touches the shared server:
``serve --wait-for-db`` (tests/test_wait_for_db.py) and the database going
away under load, or stalled, frozen with SIGSTOP (tests/test_database_outage.py,
tests/storage/test_stall.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
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

    def postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def children(self, parent: int) -> list[int]:
        """The processes ``parent`` started (backends, checkpointer, ...)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:  # ended meanwhile
                    continue
                # The parent's pid is the second field after the ")" of the name.
                if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                    found.append(int(entry.name))
        return found

    @contextlib.contextmanager
    def stalled(self) -> Iterator[None]:
        """Every process of the server stopped (SIGSTOP) meanwhile, as a hung
        VM or a partition looks: the kernel still accepts and acknowledges
        connections, nothing answers. Continued (SIGCONT) on the way out."""
        postmaster = self.postmaster()
        os.kill(postmaster, signal.SIGSTOP)  # first: then it starts no new ones
        try:
            for pid in self.children(postmaster):
                os.kill(pid, signal.SIGSTOP)
            yield
        finally:
            self.resume()

    def resume(self) -> None:
        """SIGCONT to the server's processes, stopped or not (also in the
        teardown: a test that failed in the middle of a stall left them stopped)."""
        with contextlib.suppress(OSError, ValueError):  # no server (pid file) running
            postmaster = self.postmaster()
            for pid in [postmaster, *self.children(postmaster)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


@contextlib.contextmanager
def own_server() -> Iterator[OwnPostgres]:
    """A new server's folder (initdb'd, not started), removed with the server afterwards."""
    if not (PG_BIN / "initdb").exists():  # pragma: no cover - Debian's postgresql-15 is set up
        pytest.fail(f"{PG_BIN}/initdb is missing: install Debian's postgresql-15")
    # Outside pytest's folder, which only root may enter.
    folder = Path(tempfile.mkdtemp(prefix="qmfa-own-pg-"))
    folder.chmod(0o755)
    server = OwnPostgres(folder / "pg", free_port())
    server.init()
    try:
        yield server
    finally:
        server.resume()
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


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    with own_server() as server:
        yield server
