"""Single-use things used at once by many clients: exactly one wins.

The same TOTP code, the same recovery code and the same password-reset link
are sent concurrently from many threads (in-process), and the same TOTP code
from two real server processes on one database. DESIGN.md: the replay check
is one atomic statement, so two workers racing with the same code cannot
both win.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from quatrix_mfa.core.factors import totp
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, basic, latest_link

RACERS = 20
ROUNDS = 3
# High enough that the losers of a race answer "wrong code", not "throttled".
GENEROUS = {"user_failure_threshold": 1000, "address_failure_threshold": 100000}


def race(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call in its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def pending_sessions(
    api: Api, count: int, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD
) -> list[str]:
    tokens = []
    for _ in range(count):
        response = api.login(email, password)
        assert response.status_code == 207, response.text
        assert response.headers["Mfa-Code"] == "1"
        tokens.append(response.json()["session_id"])
    return tokens


def assert_one_winner(responses: list[Any], loser_status: int, loser_code: int) -> Any:
    statuses = sorted(r.status_code for r in responses)
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1, statuses
    for loser in responses:
        if loser.status_code != 200:
            assert loser.status_code == loser_status, loser.text
            assert loser.json()["code"] == loser_code, loser.text
    return winners[0]


@pytest.fixture
def racing_api(api: Api, make_api: Any) -> Api:
    """The app on the same database (admin bootstrapped by ``api``), generous throttle."""
    built: Api = make_api(**GENEROUS)
    return built


def test_same_totp_code_from_many_threads_wins_exactly_once(racing_api: Api) -> None:
    api = racing_api
    token, secret, _ = api.enroll_totp(api.full_session())
    for _ in range(ROUNDS):
        tokens = pending_sessions(api, RACERS)
        code = api.code(secret)
        body = {"auth_type": "2FA", "code": code}
        responses = race([lambda t=t: api.post("/session/login", body, t) for t in tokens])
        winner = assert_one_winner(responses, 401, 11)
        full = winner.json()["session_id"]
        assert full not in tokens
        assert api.get("/profile", full).status_code == 200
        # The code is spent for good: even a fresh pending session cannot use it.
        (late,) = pending_sessions(api, 1)
        assert api.post("/session/login", body, late).json()["code"] == 11
        api.clock.advance(totp.PERIOD)
    assert api.get("/profile", token).status_code == 200


def test_each_thread_with_its_own_client_still_gets_one_winner(
    racing_api: Api, make_api: Any
) -> None:
    api = racing_api
    _, secret, _ = api.enroll_totp(api.full_session())
    tokens = pending_sessions(api, RACERS)
    clients = [make_api(**GENEROUS) for _ in range(4)]
    body = {"auth_type": "2FA", "code": api.code(secret)}
    calls = [
        lambda t=t, c=clients[i % len(clients)]: c.post("/session/login", body, t)
        for i, t in enumerate(tokens)
    ]
    assert_one_winner(race(calls), 401, 11)


def test_same_recovery_code_from_many_threads_wins_exactly_once(racing_api: Api) -> None:
    api = racing_api
    _, _, recovery = api.enroll_totp(api.full_session())
    for round_ in range(ROUNDS):
        tokens = pending_sessions(api, RACERS)
        body = {"auth_type": "2FA", "code": recovery[round_]}
        responses = race([lambda t=t: api.post("/session/login", body, t) for t in tokens])
        winner = assert_one_winner(responses, 401, 11)
        assert api.get("/profile", winner.json()["session_id"]).status_code == 200
        (late,) = pending_sessions(api, 1)
        assert api.post("/session/login", body, late).json()["code"] == 11
        api.clock.advance(totp.PERIOD)
    # The unused codes still work.
    (pending,) = pending_sessions(api, 1)
    body = {"auth_type": "2FA", "code": recovery[ROUNDS]}
    assert api.post("/session/login", body, pending).status_code == 200


def test_same_reset_link_from_many_threads_sets_the_password_once(
    racing_api: Api, admin_token: str
) -> None:
    api = racing_api
    email = "racer@example.com"
    created = api.post("/user/create", {"name": "Racer", "email": email}, admin_token)
    assert created.status_code == 201, created.text
    reset_id = latest_link(api.core, email).rsplit("/", 1)[1]
    passwords = [f"racing password number {i}" for i in range(RACERS)]
    responses = race(
        [
            lambda p=p: api.post(f"/reset-password/reset/{reset_id}", {"password": p})
            for p in passwords
        ]
    )
    winner = assert_one_winner(responses, 401, 1)
    assert winner.json()["id"] == reset_id
    won = passwords[responses.index(winner)]
    logins = {p: api.login(email, p).status_code for p in passwords}
    assert logins[won] == 200
    assert [p for p, status in logins.items() if status == 200] == [won]
    assert api.get(f"/reset-password/metadata/{reset_id}").status_code == 401


# -- two real server processes on one database ---------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(tmp_path: Path, db_kind: str, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUATRIX_MFA_")}
    env.update(
        {
            "QUATRIX_MFA_DATA_DIR": str(tmp_path / "shared-data"),
            "QUATRIX_MFA_ARGON2_MEMORY_KIB": "64",
            "QUATRIX_MFA_ARGON2_TIME_COST": "1",
            "QUATRIX_MFA_USER_FAILURE_THRESHOLD": "1000",
            "QUATRIX_MFA_ADDRESS_FAILURE_THRESHOLD": "100000",
        }
    )
    if db_kind == "postgresql":
        env["QUATRIX_MFA_DATABASE_URL"] = database_url
    return env


def init_admin(env: dict[str, str]) -> None:
    """``quatrix-mfa init`` with the test admin's password, as a real process."""
    init = subprocess.run(
        [
            sys.executable,
            "-m",
            "quatrix_mfa.cli",
            "init",
            "--email",
            ADMIN_EMAIL,
            "--password-stdin",
        ],
        input=ADMIN_PASSWORD + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert init.returncode == 0, init.stderr


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"server exited with {process.returncode}"
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not healthy after {timeout} s")


@pytest.fixture
def two_servers(tmp_path: Path, db_kind: str, database_url: str) -> Iterator[list[str]]:
    env = server_env(tmp_path, db_kind, database_url)
    init_admin(env)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        urls = []
        for _ in range(2):
            port = free_port()
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "quatrix_mfa.cli", "serve", "--port", str(port)],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes, strict=True):
            wait_healthy(url, process)
        yield [f"{url}/api/1.0" for url in urls]
    finally:
        for process in processes:
            process.kill()
        for process in processes:
            process.wait(timeout=10)


def enroll_over_http(urls: list[str]) -> tuple[bytes, list[str], list[str]]:
    """Enroll the admin's 2FA at the real clock: (secret, recovery codes, pending tokens)."""
    auth = {"Authorization": basic(ADMIN_EMAIL, ADMIN_PASSWORD)}
    with httpx.Client(timeout=30.0) as http:
        token = http.get(f"{urls[0]}/session/login", headers=auth).json()["session_id"]
        secret_b32 = http.get(
            f"{urls[0]}/profile/2fa/generate", headers={"X-Auth-Token": token}
        ).json()["secret"]
        secret = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
        body = {"auth_type": "2FA", "code": totp.code_at(secret, time.time())}
        enrolled = http.post(
            f"{urls[1]}/profile/set-mfa", headers={"X-Auth-Token": token}, json=body
        )
        assert enrolled.status_code == 200, enrolled.text
        tokens = []
        for i in range(RACERS):
            response = http.get(f"{urls[i % 2]}/session/login", headers=auth)
            assert response.status_code == 207, response.text
            tokens.append(response.json()["session_id"])
    return secret, enrolled.json()["recovery_codes"], tokens


def fire_at_both(urls: list[str], tokens: list[str], code: Callable[[], str]) -> list[Any]:
    """Half the pending sessions to each server, all at once, with ``code()``."""
    clients = [httpx.Client(timeout=30.0) for _ in tokens]
    try:
        for i, client in enumerate(clients):  # connect now, so the race is only the request
            assert client.get(f"{urls[i % 2]}/account/metadata").status_code == 200
        body = {"auth_type": "2FA", "code": code()}
        return race(
            [
                lambda i=i, t=t: clients[i].post(
                    f"{urls[i % 2]}/session/login", headers={"X-Auth-Token": t}, json=body
                )
                for i, t in enumerate(tokens)
            ]
        )
    finally:
        for client in clients:
            client.close()


def assert_full_everywhere(urls: list[str], token: str) -> None:
    for url in urls:
        profile = httpx.get(f"{url}/profile", headers={"X-Auth-Token": token}, timeout=30.0)
        assert profile.status_code == 200, profile.text


def test_same_totp_code_at_two_server_processes_wins_exactly_once(two_servers: list[str]) -> None:
    secret, _, tokens = enroll_over_http(two_servers)
    # The enrollment spent the current step; the next one is within the ±1 drift,
    # and is computed right before firing.
    responses = fire_at_both(
        two_servers, tokens, lambda: totp.code_at(secret, time.time() + totp.PERIOD)
    )
    winner = assert_one_winner(responses, 401, 11)
    assert_full_everywhere(two_servers, winner.json()["session_id"])


def test_same_recovery_code_at_two_server_processes_wins_exactly_once(
    two_servers: list[str],
) -> None:
    _, recovery, tokens = enroll_over_http(two_servers)
    responses = fire_at_both(two_servers, tokens, lambda: recovery[0])
    winner = assert_one_winner(responses, 401, 11)
    assert_full_everywhere(two_servers, winner.json()["session_id"])
