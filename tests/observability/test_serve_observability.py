"""``serve --workers 2``: one /metrics on its own address adds up every
worker, the logs are JSON lines on stdout, and the metrics folder goes away
with the server (issue 15, items 1 and 2)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from prometheus_client.mmap_dict import MmapedDict

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, basic
from tests.servers import CLI, free_port, init_admin, serve_logged, server_env, wait_healthy
from tests.support.metrics import parse, value
from tests.support.processes import stop, wait_replaced, worker_pids

LOGINS = 24


def test_two_workers_report_through_one_metrics_address_and_log_json_lines(
    tmp_path: Path, db_kind: str, database_url: str
) -> None:
    env = server_env(tmp_path, db_kind, database_url)
    init_admin(env)
    port, metrics_port = free_port(), free_port()
    env["QUATRIX_MFA_METRICS_ADDR"] = f"127.0.0.1:{metrics_port}"
    out = tmp_path / "stdout.log"
    server = serve_logged(env, port, out, "--workers", "2")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, server)
        workers = worker_pids(server.pid)
        assert len(workers) == 2
        folders = {_metrics_folder(pid) for pid in workers}
        assert len(folders) == 1
        folder = Path(folders.pop())

        def login(n: int) -> str:
            auth = {"Authorization": basic(ADMIN_EMAIL, ADMIN_PASSWORD), "X-Request-Id": f"t-{n}"}
            response = httpx.get(f"{url}/api/1.0/session/login", headers=auth, timeout=15)
            assert response.status_code == 200, response.text
            assert response.headers["X-Request-Id"] == f"t-{n}"
            token = str(response.json()["session_id"])
            profile = httpx.get(f"{url}/api/1.0/profile", headers={"X-Auth-Token": token})
            assert profile.status_code == 200
            return token

        with ThreadPoolExecutor(8) as pool:
            tokens = list(pool.map(login, range(LOGINS)))
        # Every worker writes its own files; the scrape adds them up.
        written = {p.name for p in folder.iterdir()}
        assert all(any(str(pid) in name for name in written) for pid in workers), written
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
        assert scraped.status_code == 200
        samples = parse(scraped.text)
        ok = value(
            samples, "quatrix_mfa_logins_total", step="password", outcome="ok", factor="password"
        )
        assert ok == LOGINS
        assert httpx.get(f"{url}/metrics", timeout=5).status_code == 404
    finally:
        stop(server, timeout=20)
    assert not folder.exists()

    lines = [json.loads(line) for line in out.read_text().splitlines() if line.startswith("{")]
    requests = [line for line in lines if line["logger"] == "quatrix_mfa.request"]
    profiles = [r for r in requests if r["route"] == "/api/1.0/profile"]
    assert len(profiles) == LOGINS
    assert all(r["status"] == 200 and r["user_id"] and r["method"] == "GET" for r in profiles)
    first = next(r for r in requests if r["request_id"] == "t-0")
    assert first["route"] == "/api/1.0/session/login"
    assert first["user_id"] == profiles[0]["user_id"]  # the session it opened names them
    assert first["client_addr"] == "127.0.0.1"
    assert first["level"] == "info" and first["time"].endswith("Z")
    assert first["duration_ms"] > 0
    events = [line for line in lines if line["logger"] == "quatrix_mfa.security"]
    logged_in = [e for e in events if e["event"] == "login.password"]
    assert {e["detail"]["request_id"] for e in logged_in} == {f"t-{n}" for n in range(LOGINS)}
    text = out.read_text()
    assert ADMIN_PASSWORD not in text
    assert not [token for token in tokens if token in text]


def test_one_worker_the_default_reports_its_metrics_and_cleans_up_on_sigterm(
    tmp_path: Path, db_kind: str, database_url: str
) -> None:
    """The default serve (one worker) imports prometheus_client before it sets
    the multi-process folder: a scrape must read its memory, not the empty
    folder, and SIGTERM must still run the clean-up."""
    env = server_env(tmp_path, db_kind, database_url)
    init_admin(env)
    port, metrics_port = free_port(), free_port()
    env["QUATRIX_MFA_METRICS_ADDR"] = f"127.0.0.1:{metrics_port}"
    server = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, server)
        auth = {"Authorization": basic(ADMIN_EMAIL, ADMIN_PASSWORD)}
        for _ in range(3):
            assert httpx.get(f"{url}/api/1.0/session/login", headers=auth).status_code == 200
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
        assert scraped.status_code == 200
        ok = value(
            parse(scraped.text),
            "quatrix_mfa_logins_total",
            step="password",
            outcome="ok",
            factor="password",
        )
        assert ok == 3
    finally:
        stop(server, timeout=30)
    data_dir = Path(env["QUATRIX_MFA_DATA_DIR"])
    assert not list(data_dir.glob("metrics-*"))


def test_a_worker_stopped_by_sigterm_keeps_its_counts_and_drops_its_live_gauges(
    tmp_path: Path, db_kind: str, database_url: str
) -> None:
    """prometheus_client's multi-process mode: a worker that ended (here
    stopped with SIGTERM and replaced by the supervisor) is marked dead, so
    its live gauges no longer add to the pool in use or the hashes waiting,
    while its counters stay in the files and in every later scrape."""
    env = server_env(tmp_path, db_kind, database_url)
    init_admin(env)
    port, metrics_port = free_port(), free_port()
    env["QUATRIX_MFA_METRICS_ADDR"] = f"127.0.0.1:{metrics_port}"
    env["QUATRIX_MFA_DRAIN_SECONDS"] = "0"
    server = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    scrape = f"http://127.0.0.1:{metrics_port}/metrics"
    auth = {"Authorization": basic(ADMIN_EMAIL, ADMIN_PASSWORD)}
    try:
        wait_healthy(url, server)
        workers = worker_pids(server.pid)
        folder = Path(_metrics_folder(next(iter(workers))))
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda _: httpx.get(f"{url}/api/1.0/session/login", headers=auth, timeout=15),
                    range(LOGINS),
                )
            )
        assert all(a.status_code == 200 for a in answers)
        # The kernel hands connections to whichever worker accepts first: the
        # one to stop is one that counted logins (either may have had none;
        # both counted health checks, so the file alone says nothing).
        counted = [pid for pid in sorted(workers) if _logins_counted(folder, pid) > 0]
        assert counted, sorted(p.name for p in folder.iterdir())
        stopped = counted[0]
        mine = {p.name for p in folder.iterdir() if p.name.endswith(f"_{stopped}.db")}
        assert any(name.startswith("gauge_live") for name in mine), mine
        os.kill(stopped, signal.SIGTERM)
        wait_replaced(server.pid, stopped)
        wait_healthy(url, server)
        left = {p.name for p in folder.iterdir() if p.name.endswith(f"_{stopped}.db")}
        assert not any(name.startswith("gauge_live") for name in left), left
        assert f"counter_{stopped}.db" in left
        samples = parse(httpx.get(scrape, timeout=5).text)
        ok = value(
            samples, "quatrix_mfa_logins_total", step="password", outcome="ok", factor="password"
        )
        assert ok == LOGINS
    finally:
        stop(server, timeout=30)


def _logins_counted(folder: Path, pid: int) -> float:
    """The logins one worker counted, read from its own file of counters."""
    path = folder / f"counter_{pid}.db"
    if not path.exists():
        return 0.0
    values = MmapedDict(str(path), read_mode=True)
    try:
        return sum(
            value
            for key, value, _ in values.read_all_values()
            if json.loads(key)[0] == "quatrix_mfa_logins"
        )
    finally:
        values.close()


def _metrics_folder(pid: int) -> str:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    found = [e for e in environ if e.startswith(b"PROMETHEUS_MULTIPROC_DIR=")]
    assert found, "the worker has no metrics folder"
    return found[0].split(b"=", 1)[1].decode()


def test_a_metrics_address_in_use_stops_serve_with_one_line(
    tmp_path: Path, db_kind: str, database_url: str
) -> None:
    env = server_env(tmp_path, db_kind, database_url)
    init_admin(env)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        env["QUATRIX_MFA_METRICS_ADDR"] = f"127.0.0.1:{busy}"
        result = subprocess.run(
            [*CLI, "serve", "--port", str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].endswith(
        f"QUATRIX_MFA_METRICS_ADDR=127.0.0.1:{busy}: cannot listen there (Address already in use)"
    )
