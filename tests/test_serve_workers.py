"""``serve --workers N`` runs N worker processes that share one database."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, basic
from tests.servers import free_port, init_admin, serve, server_env, wait_healthy
from tests.support.processes import worker_pids


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
