"""What ``serve`` says as it starts, with the real command: the banner only
once the port accepts connections, one warning line for each setting that
exposes more than it likely means to, and a metrics listener that answers
``/metrics`` only (issue 15, items 1, 9 and 10 as the review left them)."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import CLI, free_port
from tests.support.processes import read_until
from tests.support.shell import Cli
from tests.support.shell import cli as cli  # the fixture

BANNER = b"quatrix-mfa on "


@contextlib.contextmanager
def serving(
    cli: Cli, port: int, *args: str, stderr: Path | None = None, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``serve`` with stdout piped (the test reads it), stderr in a file."""
    errors = stderr or cli.data_dir.parent / "serve.stderr"
    with errors.open("wb") as sink:
        process = subprocess.Popen(
            [*CLI, "serve", "--port", str(port), *args],
            env=cli.env(DRAIN_SECONDS="0", **env),
            stdout=subprocess.PIPE,
            stderr=sink,
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=10)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_banner_comes_only_once_the_port_accepts_connections(cli: Cli, workers: str) -> None:
    cli.init()
    port = free_port()
    with serving(cli, port, "--workers", workers) as server:
        banner = read_until(server, BANNER)
        # At once, no retry: whoever waits for the line may connect.
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert health.status_code == 200
    assert f"({workers} worker(s))".encode() in banner


def test_settings_that_expose_too_much_are_one_warning_line_each_and_it_still_starts(
    cli: Cli,
) -> None:
    cli.init()
    port, metrics_port = free_port(), free_port()
    exposed = {"TRUSTED_PROXIES": "10.0.0.1, 0.0.0.0/0", "METRICS_ADDR": f"0.0.0.0:{metrics_port}"}
    stderr = cli.data_dir.parent / "exposed.stderr"
    with serving(cli, port, stderr=stderr, **exposed) as server:
        read_until(server, BANNER)
        metrics = f"http://127.0.0.1:{metrics_port}"
        scraped = httpx.get(f"{metrics}/metrics", timeout=5)
        assert scraped.status_code == 200
        assert "quatrix_mfa_http_requests_total" in scraped.text
        # /metrics and nothing else, read and nothing else.
        for path in ("/", "/metrics/", "/metricsx", "/favicon.ico", "/api/1.0/profile"):
            assert httpx.get(f"{metrics}{path}", timeout=5).status_code == 404, path
        for method in ("POST", "PUT", "DELETE", "OPTIONS"):
            refused = httpx.request(method, f"{metrics}/metrics", timeout=5)
            assert refused.status_code == 405, method
            assert refused.headers["Allow"] == "GET, HEAD"
        head = httpx.head(f"{metrics}/metrics", timeout=5)
        assert head.status_code == 200 and head.content == b""
    lines = stderr.read_text().splitlines()
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == 2, lines
    proxies, listener = warnings
    assert "QUATRIX_MFA_TRUSTED_PROXIES" in proxies and "0.0.0.0/0" in proxies
    assert "X-Forwarded-For" in proxies and "10.0.0.1" not in proxies
    assert f"QUATRIX_MFA_METRICS_ADDR=0.0.0.0:{metrics_port}" in listener
    assert "QUATRIX_MFA_METRICS_TOKEN" in listener


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "[::]", "localhost", "127.0.0.2"])
def test_a_metrics_address_on_serves_own_port_is_refused_in_one_line(cli: Cli, host: str) -> None:
    cli.init()
    port = free_port()
    result = cli.run("serve", "--port", str(port), METRICS_ADDR=f"{host}:{port}")
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if not line.startswith("warning:")]
    assert errors == [
        f"error: QUATRIX_MFA_METRICS_ADDR={host}:{port} is on the port serve listens on "
        f"(--port {port}): give /metrics a port of its own"
    ]
    with pytest.raises(httpx.TransportError):  # nothing was started
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
