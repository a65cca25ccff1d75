"""The ``quatrix-mfa`` command line, run as a real subprocess: init, outbox,
audit, rotate-key, configuration errors and ``serve`` over real HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, basic
from tests.servers import CLI, free_port, wait_healthy
from tests.support.shell import LINK, Cli
from tests.support.shell import cli as cli  # the fixtures too
from tests.support.shell import open_api as open_api

SERVE = [sys.executable, "-m", "quatrix_mfa.cli", "serve"]


def test_init_prints_a_one_time_link_that_sets_the_password(cli: Cli, open_api: Any) -> None:
    result = cli.init(password=None)
    match = LINK.search(result.stdout)
    assert match, result.stdout
    assert match.group(1).startswith("http://127.0.0.1:8080/reset-password/")
    api = open_api()
    reset_id = match.group(2)
    response = api.post(f"/reset-password/reset/{reset_id}", {"password": ADMIN_PASSWORD})
    assert response.status_code == 200, response.text
    assert api.login(ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 200
    again = api.post(f"/reset-password/reset/{reset_id}", {"password": "another passphrase"})
    assert again.status_code == 401  # one-time


def test_init_twice_changes_nothing(cli: Cli) -> None:
    cli.init(password=None)
    keys = (cli.data_dir / "keys.json").read_bytes()
    second = cli.run("init", "--email", "other@example.com")
    assert second.returncode == 0, second.stderr
    assert "Nothing changed" in second.stdout
    assert "/reset-password/" not in second.stdout
    assert (cli.data_dir / "keys.json").read_bytes() == keys
    assert cli.scalar("SELECT count(*) FROM users") == 1
    assert cli.scalar("SELECT count(*) FROM accounts") == 1
    assert cli.scalar("SELECT count(*) FROM outbox") == 1


def test_init_with_password_from_stdin_allows_login(cli: Cli, open_api: Any) -> None:
    result = cli.init()
    assert "/reset-password/" not in result.stdout
    assert ADMIN_PASSWORD not in result.stdout + result.stderr
    api = open_api()
    response = api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert response.status_code == 200, response.text
    assert api.get("/profile", response.json()["session_id"]).json()["super_admin"] == "Y"


def test_init_refuses_a_weak_password_before_writing_anything(cli: Cli) -> None:
    result = cli.run("init", "--email", ADMIN_EMAIL, "--password-stdin", stdin="password\n")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not cli.data_dir.exists()


def test_init_refuses_a_password_that_is_not_utf8_before_writing_anything(cli: Cli) -> None:
    # A password no browser or Basic header could send: nobody could sign in with it.
    result = subprocess.run(
        [*CLI, "init", "--email", ADMIN_EMAIL, "--password-stdin"],
        input=b"\xff\xfe long password here x\n",
        capture_output=True,
        env=cli.env(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == ["error: the password on stdin is not UTF-8 text"]
    assert not cli.data_dir.exists()


def test_outbox_lists_queued_mail(cli: Cli) -> None:
    link = LINK.search(cli.init(password=None).stdout).group(1)  # type: ignore[union-attr]
    result = cli.run("outbox")
    assert result.returncode == 0, result.stderr
    assert f"to {ADMIN_EMAIL}" in result.stdout
    assert "Set your Quatrix password" in result.stdout
    assert link in result.stdout
    assert "queued (0 attempts)" in result.stdout


def test_outbox_says_when_it_is_empty(cli: Cli) -> None:
    cli.init()
    result = cli.run("outbox")
    assert result.returncode == 0, result.stderr
    assert "The outbox is empty." in result.stdout


def test_audit_lists_the_events_of_a_user(cli: Cli, open_api: Any) -> None:
    cli.init()
    api = open_api()
    assert api.login(ADMIN_EMAIL, "wrong password!").status_code == 401
    assert api.login(ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 200
    result = cli.run("audit", "--user", ADMIN_EMAIL.upper())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("admin.user_created success" in line for line in lines)
    assert any("login.password failure" in line for line in lines)
    assert any("login.password success" in line for line in lines)
    assert ADMIN_PASSWORD not in result.stdout
    assert "wrong password!" not in result.stdout
    unknown = cli.run("audit", "--user", "nobody@example.com")
    assert unknown.returncode != 0
    assert "nobody@example.com" in unknown.stderr


def test_rotate_key_reencrypts_totp_secrets(cli: Cli, open_api: Any) -> None:
    cli.init()
    api = open_api()
    _, secret, _ = api.enroll_totp(api.full_session())
    key_file = cli.data_dir / "keys.json"
    before = json.loads(key_file.read_text())
    old_key = cli.scalar("SELECT key_id FROM credentials")
    assert old_key == before["active"]
    old_cipher = bytes(cli.scalar("SELECT secret FROM credentials"))

    result = cli.run("rotate-key")
    assert result.returncode == 0, result.stderr
    assert "re-encrypted 1 secret(s)" in result.stdout

    after = json.loads(key_file.read_text())
    assert after["active"] != before["active"]
    assert after["active"] in result.stdout
    assert after["keys"][before["active"]] == before["keys"][before["active"]]  # old key kept
    assert after["hmac"] == before["hmac"]
    assert cli.scalar("SELECT key_id FROM credentials") == after["active"]
    assert bytes(cli.scalar("SELECT secret FROM credentials")) != old_cipher

    for client in (api, open_api()):  # the running app and a fresh one
        response = client.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        assert response.status_code == 207 and response.headers["Mfa-Code"] == "1"
        code = {"auth_type": "2FA", "code": client.code(secret)}
        done = client.post("/session/login", code, response.json()["session_id"])
        assert done.status_code == 200, done.text
        api.clock.advance(30)  # the clock both apps share: next code, next step


def test_rotate_key_without_a_key_file_fails_cleanly(cli: Cli) -> None:
    result = cli.run("rotate-key")
    assert result.returncode != 0
    assert "keys.json" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SESSION_IDLE_SECONDS", "abc"),
        ("SMTP_URL", "http://x"),
        ("TRUST_FORWARDED_FOR", "maybe"),
        ("DATABASE_URL", "mysql://x/y"),
        ("PUBLIC_URL", "mfa.example.com"),
    ],
)
def test_bad_configuration_exits_with_one_line_naming_the_variable(
    cli: Cli, name: str, value: str
) -> None:
    result = cli.run("outbox", **{name: value})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"QUATRIX_MFA_{name}" in lines[0]
    assert result.stdout == ""


def test_serve_refuses_a_plain_http_public_url_on_another_host(cli: Cli) -> None:
    result = cli.run("serve", "--port", str(free_port()), PUBLIC_URL="http://mfa.example.com")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "QUATRIX_MFA_PUBLIC_URL" in lines[0]
    assert "QUATRIX_MFA_ALLOW_PLAIN_HTTP" in lines[0]


def test_serve_refuses_to_listen_on_every_address_with_plain_http_links(cli: Cli) -> None:
    result = cli.run("serve", "--host", "0.0.0.0", "--port", str(free_port()))
    assert result.returncode != 0
    assert "QUATRIX_MFA_ALLOW_PLAIN_HTTP" in result.stderr


def test_serve_on_a_port_prints_a_link_to_that_port_that_opens_the_set_password_page(
    cli: Cli,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [*SERVE, "--port", str(port), "--init-admin", ADMIN_EMAIL],
        env=cli.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        printed = ""
        while (match := LINK.search(printed)) is None:
            line = process.stdout.readline()
            assert line, printed
            printed += line
        assert match.group(1) == f"{base}/reset-password/{match.group(2)}"
        wait_healthy(base, process)
        page = httpx.get(match.group(1), timeout=10)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert 'name="new_password"' in page.text
        assert "curl" not in page.text
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def test_serve_answers_health_and_login_over_real_http(cli: Cli) -> None:
    cli.init()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "quatrix_mfa.cli", "serve", "--port", str(port)],
        env=cli.env(PUBLIC_URL=base),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_healthy(base, process)
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        login = httpx.get(
            f"{base}/api/1.0/session/login",
            headers={"Authorization": basic(ADMIN_EMAIL, ADMIN_PASSWORD)},
            timeout=10,
        )
        assert login.status_code == 200, login.text
        token = login.json()["session_id"]
        assert login.headers["X-Auth-Token"] == token
        profile = httpx.get(f"{base}/api/1.0/profile", headers={"X-Auth-Token": token}, timeout=5)
        assert profile.status_code == 200
        assert profile.json()["email"] == ADMIN_EMAIL
        wrong = httpx.get(
            f"{base}/api/1.0/session/login",
            headers={"Authorization": basic(ADMIN_EMAIL, "wrong password!")},
            timeout=10,
        )
        assert wrong.status_code == 401
        assert wrong.json()["code"] == 1
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_two_nodes_given_one_node_id_are_still_two_live_nodes(cli: Cli) -> None:
    """The same environment on every host (NODE_ID included) must not make two
    nodes one heartbeat row: rotate-key would then re-key under one's feet."""
    cli.init()
    processes = []
    try:
        for _ in range(2):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            process = subprocess.Popen(
                [*SERVE, "--port", str(port)],
                env=cli.env(PUBLIC_URL=base, NODE_ID="node1"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            processes.append(process)
            wait_healthy(base, process)
        deadline = time.monotonic() + 15
        status = cli.run("keys", "status")
        while status.stdout.count("node node1~") < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            status = cli.run("keys", "status")
        assert status.stdout.count("node node1~") == 2, status.stdout
        before = cli.settings().key_file.read_bytes()
        result = cli.run("rotate-key")
        assert result.returncode == 2, result.stderr
        assert "2 nodes are live" in result.stderr
        assert cli.settings().key_file.read_bytes() == before
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=60)
