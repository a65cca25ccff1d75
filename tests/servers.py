"""Real ``quatrix-mfa`` processes for tests, and racing many calls at once.

``init_admin`` bootstraps a database with the test admin through the real
CLI; ``Server`` is one ``quatrix-mfa serve`` process that a test can start,
SIGKILL and start again on the same database; ``race`` releases many calls
together and ``assert_one_winner`` checks that exactly one of them won.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

CLI = [sys.executable, "-m", "quatrix_mfa.cli"]
# High enough that the losers of a race answer "wrong code", not "throttled".
GENEROUS_ENV = {
    "QUATRIX_MFA_USER_FAILURE_THRESHOLD": "1000",
    "QUATRIX_MFA_ADDRESS_FAILURE_THRESHOLD": "100000",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(tmp_path: Path, db_kind: str, database_url: str) -> dict[str, str]:
    """The environment of a server on ``database_url`` (SQLite: the data folder's
    default file), with cheap argon2 and a generous throttle."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUATRIX_MFA_")}
    env.update(
        {
            "QUATRIX_MFA_DATA_DIR": str(tmp_path / "shared-data"),
            "QUATRIX_MFA_ARGON2_MEMORY_KIB": "64",
            "QUATRIX_MFA_ARGON2_TIME_COST": "1",
            **GENEROUS_ENV,
        }
    )
    if db_kind == "postgresql":
        env["QUATRIX_MFA_DATABASE_URL"] = database_url
    return env


def init_admin(env: dict[str, str]) -> None:
    """``quatrix-mfa init`` with the test admin's password, as a real process."""
    init = subprocess.run(
        [*CLI, "init", "--email", ADMIN_EMAIL, "--password-stdin"],
        input=ADMIN_PASSWORD + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert init.returncode == 0, init.stderr


def serve(env: dict[str, str], port: int, *args: str, **popen: Any) -> subprocess.Popen[bytes]:
    """``quatrix-mfa serve --port PORT ARGS`` as a child process, output discarded."""
    return subprocess.Popen(
        [*CLI, "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **popen,
    )


def serve_logged(env: dict[str, str], port: int, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``quatrix-mfa serve --port PORT ARGS`` in a session of its own (to stop
    with :func:`tests.support.processes.stop`), stdout and stderr into ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [*CLI, "serve", "--port", str(port), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"server exited with {process.returncode}"
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} not healthy after {timeout} s")


@dataclass
class Server:
    """One ``quatrix-mfa serve`` process on a fixed port."""

    env: dict[str, str]
    name: str = "server"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None  # where its stdout and stderr go (None: nowhere)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.root}/api/1.0"

    def start(self) -> None:
        """Start the process; :meth:`wait_healthy` waits until it answers."""
        if self.log is None:
            self.process = serve(self.env, self.port)
        else:
            self.process = serve_logged(self.env, self.port, self.log)

    def wait_healthy(self) -> None:
        assert self.process is not None
        wait_healthy(self.root, self.process)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGKILL (if still running) and reap the process."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(timeout=10)

    def crash(self) -> None:
        """``kill -9`` now, whatever the process is doing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(timeout=10) == -signal.SIGKILL


def race(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run every call in its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def assert_one_winner(
    responses: list[Any], losers: Collection[tuple[int, int]], winner_status: int = 200
) -> Any:
    """Exactly one response has ``winner_status``; every other is an ErrorModel
    with one of the (status, code) pairs in ``losers``. Returns the winner."""
    winners = [r for r in responses if r.status_code == winner_status]
    assert len(winners) == 1, sorted(r.status_code for r in responses)
    for loser in responses:
        if loser is not winners[0]:
            assert (loser.status_code, loser.json().get("code")) in losers, loser.text
    return winners[0]
