"""A light load of reads (``GET /profile``) and writes (``POST /user/create``)
against a real ``quatrix-mfa serve``, every answer kept with its timing:
tests/test_database_outage.py and tests/test_backup.py."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, basic
from tests.servers import CLI, free_port, wait_healthy
from tests.support.shell import Cli


@dataclass
class Answer:
    kind: str
    at: float
    seconds: float
    status: int  # 0: no HTTP answer (connection dropped or timed out)
    retry_after: str | None = None
    body: str = ""
    email: str | None = None


@dataclass
class Load:
    """Two readers and two writers against one server until stopped."""

    api: str
    token: str
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _next_email(self) -> str:
        with self._lock:
            self._count += 1
            return f"load{self._count}@example.com"

    def _call(self, http: httpx.Client, kind: str) -> None:
        started = time.monotonic()
        email = None
        try:
            if kind == "read":
                response = http.get(f"{self.api}/profile", headers={"X-Auth-Token": self.token})
            else:
                email = self._next_email()
                response = http.post(
                    f"{self.api}/user/create",
                    json={"name": "Load", "email": email},
                    headers={"X-Auth-Token": self.token},
                )
            answer = Answer(
                kind,
                started,
                time.monotonic() - started,
                response.status_code,
                response.headers.get("Retry-After"),
                response.text,
                email,
            )
        except httpx.TransportError as error:
            answer = Answer(kind, started, time.monotonic() - started, 0, body=repr(error))
        with self._lock:
            self.answers.append(answer)

    def _worker(self, kind: str) -> None:
        with httpx.Client(timeout=30) as http:
            while not self.stop.is_set():
                self._call(http, kind)
                time.sleep(0.02)

    @contextlib.contextmanager
    def running(self) -> Iterator[Load]:
        threads = [
            threading.Thread(target=self._worker, args=(kind,), daemon=True)
            for kind in ("read", "read", "write", "write")
        ]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(timeout=60)

    def since(self, moment: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.at >= moment]

    def wait_for(self, check: Callable[[Answer], bool], after: float, timeout: float) -> float:
        """Wait until an answer started after ``after`` passes ``check``; its start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for answer in self.since(after):
                if check(answer):
                    return answer.at
            time.sleep(0.05)
        raise AssertionError(f"no such answer within {timeout} s")


@contextlib.contextmanager
def serving(cli: Cli, log: Path, **env: str) -> Iterator[str]:
    """``serve --workers 2`` on a free port (``env``: more QUATRIX_MFA_* settings),
    its output (log lines and any traceback) in ``log``."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*CLI, "serve", "--port", str(port), "--workers", "2"],
            env=cli.env(PUBLIC_URL=base, **env),
            stdout=stderr,  # the log lines (stdout) and any traceback (stderr), in order
            stderr=stderr,
        )
        try:
            wait_healthy(base, process)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)


def sign_in(base: str) -> str:
    response = httpx.get(
        f"{base}/api/1.0/session/login",
        headers={"Authorization": basic(ADMIN_EMAIL, ADMIN_PASSWORD)},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["session_id"])
