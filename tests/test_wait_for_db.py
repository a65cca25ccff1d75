"""Issue 16, item 6: ``serve --wait-for-db SECONDS`` retries with a line per
attempt and starts when the database comes up during the wait. The
PostgreSQL is the test's own (initdb, pg_ctl on a free port), so the shared
server is never touched."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from quatrix_mfa.keys import create_key_file
from tests.conftest import only_on
from tests.servers import CLI, free_port, wait_healthy
from tests.support.own_postgres import OwnPostgres
from tests.support.own_postgres import own_postgres as own_postgres  # the fixture
from tests.support.shell import Cli


@only_on("postgresql", "starts a PostgreSQL of its own: once per suite is enough")
def test_serve_waits_for_a_database_that_comes_up_during_the_wait(
    own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    cli = Cli(tmp_path / "data", own_postgres.url)
    own_postgres.start()
    cli.init()
    own_postgres.stop()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--wait-for-db", "60"],
        env=cli.env(PUBLIC_URL=base),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        assert first.startswith("waiting for the database (attempt 1)"), first
        assert f"127.0.0.1:{own_postgres.port}" in first
        own_postgres.start()
        wait_healthy(base, process)
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=20)
    waited = [line for line in process.stderr.read().splitlines() if line.startswith("waiting")]
    assert "Traceback" not in "\n".join(waited)


def test_without_wait_an_unreachable_database_fails_at_once(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "data", f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    create_key_file(tmp_path / "data" / "keys.json")
    started = time.monotonic()
    result = cli.run("serve", "--port", str(free_port()))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "waiting" not in result.stderr
    assert time.monotonic() - started < 30
