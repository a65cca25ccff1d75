"""Start, pin and stop the servers (quatrix-mfa, the floor, privacyIDEA) and wait for them.

Also the PostgreSQL databases the scale runs use, and the privacyIDEA data
set up once with ``pi_setup.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import config
from config import (
    BENCH,
    FLOOR,
    OURS,
    PG,
    PI,
    PI_DATA,
    PI_POOL,
    PI_VENV,
    PI_WORKERS,
    REF,
    SERVER_CPU,
    SERVER_ENV,
    VENV,
    WORKERS,
    log,
)

# --- processes ------------------------------------------------------------------------


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback only
                return
        except OSError as error:
            if getattr(error, "code", None):  # an HTTP answer: the server is up
                return
            time.sleep(0.3)
    raise RuntimeError(f"no answer from {url}")


class Server:
    def __init__(self, name: str, cmd: list[str], cpus: str, url: str, env: dict[str, str]):
        self.name = name
        log_file = (config.RUN / f"{name}.log").open("w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", cpus, *cmd],
            env={**os.environ, **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=config.RUN,
        )
        wait_http(url)

    def stop(self) -> None:
        # The server runs in its own process group, which we made: end just that group.
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def ours(
    data_dir: Path, database_url: str, cpus: str = SERVER_CPU, workers: int = WORKERS
) -> Server:
    env = {**SERVER_ENV, "QUATRIX_MFA_DATA_DIR": str(data_dir)}
    if database_url:
        env["QUATRIX_MFA_DATABASE_URL"] = database_url
    cmd = [str(VENV / "quatrix-mfa"), "serve", "--port", str(OURS), "--workers", str(workers)]
    return Server("quatrix-mfa", cmd, cpus, f"http://127.0.0.1:{OURS}/healthz", env)


def floor() -> Server:
    cmd = [str(VENV / "uvicorn"), "--app-dir", str(BENCH), "floor:app", "--port", str(FLOOR)]
    cmd += ["--workers", str(WORKERS), "--log-level", "warning", "--no-access-log"]
    return Server("floor", cmd, SERVER_CPU, f"http://127.0.0.1:{FLOOR}/", {})


def reference(db: Path) -> Server:
    """The idiomatic FastAPI session check (bench/reference.py), served like ours."""
    cmd = [str(VENV / "uvicorn"), "--app-dir", str(BENCH), "reference:app", "--port", str(REF)]
    cmd += ["--workers", str(WORKERS), "--log-level", "warning", "--no-access-log"]
    url = f"http://127.0.0.1:{REF}/api/1.0/profile"
    return Server("reference", cmd, SERVER_CPU, url, {"REFERENCE_DB": str(db)})


def privacyidea() -> Server:
    cfg = PI_DATA / "pi.cfg"
    factory = f"privacyidea.app:create_app('production', config_file='{cfg}', silent=True)"
    cmd = [str(PI_VENV / "bin" / "gunicorn"), "-w", str(PI_WORKERS), "-b", f"127.0.0.1:{PI}"]
    cmd += ["--timeout", "120", factory]
    env = {"PRIVACYIDEA_CONFIGFILE": str(cfg)}
    return Server("privacyidea", cmd, SERVER_CPU, f"http://127.0.0.1:{PI}/", env)


def fresh_pg(name: str) -> str:
    for sql in (f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"):
        subprocess.run(
            ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", sql],
            check=True,
        )
    return PG + name


def drop_pg(name: str) -> None:
    subprocess.run(
        [
            "psql",
            "-q",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            f"DROP DATABASE IF EXISTS {name}",
        ],
        check=False,
    )


def pi_setup() -> None:
    marker = PI_DATA / "ready"
    if marker.exists():
        log("privacyIDEA data from an earlier run is reused (bench/.work/pi-data)")
        return
    log(f"setting up privacyIDEA with pi-manage: {PI_POOL} users with TOTP tokens")
    subprocess.run(
        [sys.executable, str(BENCH / "pi_setup.py"), str(PI_VENV), str(PI_DATA), str(PI_POOL)],
        check=True,
    )
    marker.write_text("ok\n")
