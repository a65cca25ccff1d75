"""Attack: replay and double-spend across two real server processes.

One valid TOTP code, one recovery code, one password-reset link and one
set-mfa enrollment code are each sent by 50 concurrent requests, half to
node A and half to node B (two ``quatrix-mfa serve`` processes on one
database), several rounds in a row. DESIGN.md: a code is accepted at most
once per user and the check-and-set is one atomic database statement, so
exactly one request may win, every time; the others get the ordinary "wrong
code" / "unknown link" answers and change nothing. If two could win, a
stolen code (shoulder-surfed, phished, logged) would be usable by the
attacker racing the victim, and one reset link could set two passwords.
"""

from __future__ import annotations

import functools
import time
import uuid
from typing import Any

import httpx
import pytest

from quatrix_mfa.core.factors import recovery, totp
from tests.conftest import error, latest_link
from tests.multinode_support import Cluster, Node, client, cluster_fixtures, next_code
from tests.servers import GENEROUS_ENV, assert_one_winner, race

RACERS = 50
ROUNDS = 3
WRONG_CODE = {(401, 11)}


cluster, nodes = cluster_fixtures("replay", GENEROUS_ENV)


def node(nodes: Cluster, i: int) -> Node:
    """Every other request goes to the other process."""
    return nodes.a if i % 2 == 0 else nodes.b


def pending_sessions(nodes: Cluster, email: str) -> list[str]:
    """RACERS pending sessions of ``email`` (Mfa-Code 1), opened on both nodes."""
    tokens = []
    for i in range(RACERS):
        response = nodes.login(node(nodes, i), email)
        assert response.status_code == 207, response.text
        assert response.headers["Mfa-Code"] == "1"
        tokens.append(response.json()["session_id"])
    return tokens


def _post(http: httpx.Client, url: str, token: str | None, body: Any) -> httpx.Response:
    headers = {"X-Auth-Token": token} if token else {}
    return http.post(url, headers=headers, json=body)


def fire(nodes: Cluster, path: str, tokens: list[str | None], bodies: list[Any]) -> list[Any]:
    """POST ``path`` once per (token, body), alternating nodes, all released at once
    over connections opened beforehand, so the race is only the request."""
    clients = [client() for _ in tokens]
    try:
        calls = []
        for i, (http, token, body) in enumerate(zip(clients, tokens, bodies, strict=True)):
            target = node(nodes, i)
            assert http.get(f"{target.api}/account/metadata").status_code == 200
            calls.append(functools.partial(_post, http, f"{target.api}{path}", token, body))
        return race(calls)
    finally:
        for http in clients:
            http.close()


def second_factor(nodes: Cluster, tokens: list[str], code: str) -> list[Any]:
    body = {"auth_type": "2FA", "code": code}
    return fire(nodes, "/session/login", list(tokens), [body] * len(tokens))


def assert_full_on_both(nodes: Cluster, token: str, email: str) -> None:
    for target in (nodes.a, nodes.b):
        profile = nodes.get(target, "/profile", token)
        assert profile.status_code == 200, profile.text
        assert profile.json()["email"] == email


def assert_spent(nodes: Cluster, email: str, code: str) -> None:
    """Even a fresh pending session, on either node, cannot use ``code`` again."""
    for target in (nodes.a, nodes.b):
        late = nodes.login(target, email)
        assert late.status_code == 207, late.text
        body = {"auth_type": "2FA", "code": code}
        error(nodes.post(target, "/session/login", body, late.json()["session_id"]), 401, 11)


def enrolled_user(nodes: Cluster, label: str) -> tuple[str, bytes, list[str]]:
    """A fresh user with 2FA: (email, secret, recovery codes)."""
    _, email = nodes.create_user(label)
    secret, _, codes = nodes.enroll(email)
    return email, secret, codes


@pytest.mark.parametrize("round_", range(ROUNDS))
@pytest.mark.parametrize("kind", ["totp", "recovery"])
def test_same_second_factor_code_at_two_server_processes_wins_exactly_once(
    nodes: Cluster, kind: str, round_: int
) -> None:
    email, secret, codes = enrolled_user(nodes, f"{kind}{round_}")
    tokens = pending_sessions(nodes, email)
    # TOTP: the enrollment spent the current step; the next one is within the ±1 drift.
    code = next_code(secret) if kind == "totp" else codes[0]
    winner = assert_one_winner(second_factor(nodes, tokens, code), WRONG_CODE)
    full = winner.json()["session_id"]
    assert full not in tokens
    assert_full_on_both(nodes, full, email)
    assert_spent(nodes, email, code)
    with nodes.core.store.transaction(write=False) as tx:
        user = tx.users.by_email(email)
        assert user is not None
        spent = 1 if kind == "recovery" else 0
        assert tx.credentials.recovery_codes_left(user.id) == recovery.COUNT - spent
    # The other recovery codes are untouched.
    pending = nodes.login(nodes.b, email).json()["session_id"]
    body = {"auth_type": "2FA", "code": codes[1]}
    assert nodes.post(nodes.a, "/session/login", body, pending).status_code == 200


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_same_reset_link_at_two_server_processes_sets_one_password(
    nodes: Cluster, round_: int
) -> None:
    email = f"reset{round_}-{uuid.uuid4().hex[:8]}@example.com"
    created = nodes.post(
        nodes.b, "/user/create", {"name": "Reset", "email": email}, nodes.admin_token
    )
    assert created.status_code == 201, created.text
    reset_id = latest_link(nodes.core, email).rsplit("/", 1)[1]
    passwords = [f"racing password number {i}" for i in range(RACERS)]
    responses = fire(
        nodes,
        f"/reset-password/reset/{reset_id}",
        [None] * RACERS,
        [{"password": p} for p in passwords],
    )
    winner = assert_one_winner(responses, {(401, 1)})
    assert winner.json()["id"] == reset_id
    won = passwords[responses.index(winner)]
    logins = {p: nodes.login(node(nodes, i), email, p).status_code for i, p in enumerate(passwords)}
    assert [p for p, status in logins.items() if status == 200] == [won]
    for target in (nodes.a, nodes.b):
        error(nodes.http.get(f"{target.api}/reset-password/metadata/{reset_id}"), 401, 1)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_same_enrollment_code_at_two_server_processes_enrolls_once(
    nodes: Cluster, round_: int
) -> None:
    """50 sessions of one user confirm one pending secret with one code: one
    enrollment, one set of recovery codes, and it is the winner's."""
    _, email = nodes.create_user(f"enroll{round_}")
    tokens = [nodes.full_session(node(nodes, i), email) for i in range(RACERS)]
    secret = nodes.generate(nodes.a, tokens[0])
    code = totp.code_at(secret, time.time())
    body = {"auth_type": "2FA", "code": code}
    responses = fire(nodes, "/profile/set-mfa", list(tokens), [body] * RACERS)
    # A loser finds its session closed by the winner, the pending secret gone,
    # or (having read it just before) loses the check-and-set: "wrong code".
    winner = assert_one_winner(responses, {(401, 1), (400, 14), (401, 11)})
    data = winner.json()
    assert_full_on_both(nodes, data["session_ids"], email)
    for token in tokens:
        error(nodes.get(nodes.b, "/profile", token), 401, 1)
    with nodes.core.store.transaction(write=False) as tx:
        user = tx.users.by_email(email)
        assert user is not None and user.twofa_active
        assert tx.credentials.recovery_codes_left(user.id) == recovery.COUNT
        assert tx.credentials.enrollment(user.id) is None
    assert_spent(nodes, email, code)
    # The codes the winner was shown are the ones that work.
    pending = nodes.login(nodes.a, email).json()["session_id"]
    login = {"auth_type": "2FA", "code": data["recovery_codes"][0]}
    finished = nodes.post(nodes.b, "/session/login", login, pending)
    assert finished.status_code == 200, finished.text
