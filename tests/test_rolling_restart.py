"""Rolling restarts (issue 15 item 6): SIGTERM drains a node before it stops,
and two nodes behind the shipped nginx config (deploy/nginx.conf) restarted one
after the other under a load of POSTs lose no request."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.servers import Server, free_port, init_admin, serve, server_env

NGINX = Path("/usr/sbin/nginx")
SHIPPED = Path(__file__).parent.parent / "deploy" / "nginx.conf"
FAIL_TIMEOUT = 2.0  # the shipped upstream's fail_timeout: a stopped node's rest


def sigterm(node: Server) -> None:
    assert node.process is not None
    node.process.send_signal(signal.SIGTERM)


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture
def env(tmp_path: Path, db_kind: str, database_url: str) -> dict[str, str]:
    """Nodes sharing one database (and keys.json), as on hosts of one deployment."""
    env = server_env(tmp_path, db_kind, database_url)
    init_admin(env)
    return env


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_turns_readyz_503_at_once_keeps_serving_for_the_drain_then_refuses(
    env: dict[str, str], workers: int
) -> None:
    node = Server({**env, "QUATRIX_MFA_DRAIN_SECONDS": "4"})
    # Its own process group: the workers too are killed if the test fails.
    node.process = serve(node.env, node.port, "--workers", str(workers), start_new_session=True)
    try:
        node.wait_healthy()
        kept_alive = httpx.Client(base_url=node.root, timeout=5)
        assert kept_alive.get("/readyz").status_code == 200
        sigterm(node)
        # At once: well inside the 4 s drain (with --workers the supervisor
        # passes the signal on; a loaded box may take a few hundred ms).
        deadline = time.monotonic() + 2
        while kept_alive.get("/readyz").status_code != 503:
            assert time.monotonic() < deadline, "readyz still ready 2 s after SIGTERM"
            time.sleep(0.1)
        for _ in range(4):  # whichever worker answers
            assert httpx.get(f"{node.root}/readyz", timeout=5).status_code == 503
            during = httpx.get(f"{node.root}/healthz", timeout=5)
            assert during.status_code == 200
            # Each answer now closes its connection: the next one goes elsewhere.
            assert during.headers["connection"] == "close"
        assert node.process is not None and node.process.poll() is None
        assert node.process.wait(timeout=20) is not None
        assert refused(node.port)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.process.pid, signal.SIGKILL)
        node.stop()


def nginx_config(folder: Path, a: Server, b: Server, port: int) -> Path:
    """deploy/nginx.conf as shipped, on this test's ports, with a test certificate."""
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    files = ["-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")]
    self_signed = ["openssl", "req", "-x509", *key, "-days", "1", "-subj", "/CN=127.0.0.1"]
    subprocess.run([*self_signed, *files], check=True, capture_output=True)
    site = SHIPPED.read_text()
    site = site.replace("127.0.0.1:8081", f"127.0.0.1:{a.port}")
    site = site.replace("127.0.0.1:8082", f"127.0.0.1:{b.port}")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{free_port()};")
    site = site.replace("listen 443 ssl", f"listen 127.0.0.1:{port} ssl")
    site = re.sub(r"listen \[::\]:\d+[^;]*;", "", site)  # this machine may lack IPv6
    site = site.replace("/etc/quatrix-mfa/tls/fullchain.pem", str(folder / "cert.pem"))
    site = site.replace("/etc/quatrix-mfa/tls/privkey.pem", str(folder / "key.pem"))
    (folder / "site.conf").write_text(site)
    temp = " ".join(
        f"{kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    main = folder / "nginx.conf"
    main.write_text(
        f"worker_processes 1; pid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} warn;\n"
        "events { worker_connections 1024; }\n"
        f"http {{ access_log off; {temp} uwsgi_temp_path {folder / 'uwsgi'}; "
        f"scgi_temp_path {folder / 'scgi'}; include {folder / 'site.conf'}; }}\n"
    )
    return main


@pytest.fixture
def nginx_folder(tmp_path: Path) -> Path:
    assert NGINX.exists(), "Debian's nginx: apt-get install -y nginx"
    folder = tmp_path / "nginx"
    folder.mkdir()
    return folder


class Load:
    """POSTs through the proxy from a few threads, counting every outcome."""

    def __init__(self, url: str, threads: int = 12) -> None:
        self.url = url
        self.outcomes: Counter[str] = Counter()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(threads)]

    def run(self, index: int) -> None:
        with httpx.Client(base_url=self.url, verify=False, timeout=30) as client:
            n = 0
            while not self.stopping.is_set():
                n += 1
                email = f"load-{index}-{n}@example.com"
                try:
                    answer = client.post("/api/1.0/reset-password/request", json={"email": [email]})
                    outcome = str(answer.status_code)
                    if answer.status_code != 200:
                        outcome += " " + answer.text[:120]
                except httpx.TransportError as error:
                    outcome = type(error).__name__
                with self.lock:
                    self.outcomes[outcome] += 1

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)


def test_two_nodes_behind_the_shipped_nginx_restarted_one_after_the_other_lose_no_post(
    env: dict[str, str], nginx_folder: Path
) -> None:
    a, b = Server(env, "a"), Server(env, "b")
    port = free_port()
    config = nginx_config(nginx_folder, a, b, port)
    nodes = [a, b]
    proxy: subprocess.Popen[bytes] | None = None
    try:
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_healthy()
        # In the foreground, its own error log: nothing of the system's nginx.
        options = ["-e", str(nginx_folder / "error.log"), "-c", str(config), "-g", "daemon off;"]
        proxy = subprocess.Popen(
            [str(NGINX), *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        url = f"https://127.0.0.1:{port}"
        for _ in range(100):
            if not refused(port):
                break
            time.sleep(0.05)
        with Load(url) as load:
            time.sleep(1.0)
            for node in nodes:
                sigterm(node)
                assert node.process is not None
                node.process.wait(timeout=40)
                node.start()
                node.wait_healthy()
                time.sleep(FAIL_TIMEOUT + 1.0)  # nginx tries the node again
        errors = (nginx_folder / "error.log").read_text()
        assert set(load.outcomes) == {"200"}, (load.outcomes, errors[-3000:])
        assert load.outcomes["200"] > 200, load.outcomes
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(timeout=10)
        for node in nodes:
            node.stop()
