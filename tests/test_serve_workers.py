"""``serve --workers N`` runs N worker processes that share one database."""

from __future__ import annotations

import json
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, basic
from tests.servers import free_port, init_admin, serve, serve_logged, server_env, wait_healthy
from tests.support.processes import stop, tcp_sockets, wait_replaced, worker_pids

LISTENING, ESTABLISHED = "0A", "01"  # TCP states as /proc/net/tcp spells them


def test_serve_with_two_workers_runs_two_processes_serving_one_database(
    tmp_path: Path, db_kind: str, database_url: str
) -> None:
    env = server_env(tmp_path, db_kind, database_url)
    init_admin(env)
    port = free_port()
    server = serve(env, port, "--workers", "2", start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, server)
        assert len(worker_pids(server.pid)) == 2

        def login(_: int) -> int:
            auth = {"Authorization": basic(ADMIN_EMAIL, ADMIN_PASSWORD)}
            response = httpx.get(f"{url}/api/1.0/session/login", headers=auth, timeout=15)
            assert response.status_code == 200, response.text
            token = response.json()["session_id"]
            profile = httpx.get(
                f"{url}/api/1.0/profile", headers={"X-Auth-Token": token}, timeout=15
            )
            return profile.status_code

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(login, range(24))) == [200] * 24
        assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


def test_each_worker_listens_on_its_own_and_connections_opened_at_once_are_spread(
    tmp_path: Path, db_kind: str, database_url: str
) -> None:
    """Every worker has a listening socket of its own on the port
    (SO_REUSEPORT), so the kernel spreads new connections over the workers.
    On one shared socket, the worker that woke first could accept all the
    connections a client opened at once, and keep them (bench/analysis.md)."""
    env = server_env(tmp_path, db_kind, database_url)
    init_admin(env)
    port = free_port()
    server = serve(env, port, "--workers", "2", start_new_session=True)
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15) for _ in range(16)]
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server)
        workers = worker_pids(server.pid)
        listening = [tcp_sockets(pid, port, LISTENING) for pid in sorted(workers)]
        assert all(len(own) == 1 for own in listening), listening
        assert listening[0] != listening[1]
        assert not tcp_sockets(server.pid, port, LISTENING)  # the supervisor takes none
        start = threading.Barrier(len(clients))

        def connect(client: httpx.Client) -> int:
            start.wait()
            return client.get("/healthz").status_code  # kept alive afterwards

        with ThreadPoolExecutor(len(clients)) as pool:
            assert list(pool.map(connect, clients)) == [200] * len(clients)
        held = {pid: len(tcp_sockets(pid, port, ESTABLISHED)) for pid in workers}
        assert sum(held.values()) == len(clients), held
        # 16 connections hashed over two sockets: all on one has odds of 1 in 32,768.
        assert all(count > 0 for count in held.values()), held
    finally:
        for client in clients:
            client.close()
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


def test_a_worker_killed_unasked_is_logged_with_the_worker_that_replaces_it(
    tmp_path: Path, db_kind: str, database_url: str
) -> None:
    env = server_env(tmp_path, db_kind, database_url)
    env["QUATRIX_MFA_LOG_FORMAT"] = "json"
    init_admin(env)
    port = free_port()
    out = tmp_path / "stdout.log"
    server = serve_logged(env, port, out, "--workers", "2")
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server)
        workers = worker_pids(server.pid)
        killed = min(workers)
        os.kill(killed, signal.SIGKILL)
        [new] = wait_replaced(server.pid, killed) - workers
        wait_healthy(f"http://127.0.0.1:{port}", server)
    finally:
        stop(server, timeout=30)
    lines = [json.loads(line) for line in out.read_text().splitlines() if line.startswith("{")]
    ended = [line for line in lines if line.get("worker_pid") == killed]
    assert ended == [
        {
            "time": ended[0]["time"],
            "level": "error",
            "logger": "quatrix_mfa.serving",
            "message": f"worker {killed} was ended by SIGKILL; worker {new} replaces it",
            "worker_pid": killed,
            "new_pid": new,
        }
    ], ended
    # A worker the supervisor stops itself (the server's own stop) is not such a line.
    assert [line["worker_pid"] for line in lines if "worker_pid" in line] == [killed]
