"""Two real ``quatrix-mfa serve`` processes on one database, for tests/test_multinode.py.

Each node has its own data folder with a copy of ``keys.json``, as on two hosts.
"""

from __future__ import annotations

import base64
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from quatrix_mfa.api.app import build_core
from quatrix_mfa.core.clock import SystemClock
from quatrix_mfa.core.context import Core
from quatrix_mfa.core.factors import totp
from quatrix_mfa.settings import Settings
from tests import spec
from tests.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    TEST_DB_TIMEOUT_SECONDS,
    basic,
    fresh_database,
    latest_link,
)
from tests.servers import Server, init_admin

PASSWORD = "a good long password"


def _check_spec(response: httpx.Response) -> None:
    response.read()
    spec.check(response)


# A server closes a connection idle for QUATRIX_MFA_KEEPALIVE_SECONDS (5 s). A
# client that sends on one at that very moment reads "Server disconnected
# without sending a response", and httpx does not send a POST again. So the
# tests' clients give up idle connections well before the servers do, as an
# HTTP client should (RFC 9112, section 9.3): seen on a loaded CI box, where a
# test paused about 5 s between two requests of the cluster's client.
IDLE_CONNECTION_SECONDS = 1.0


def client() -> httpx.Client:
    return httpx.Client(
        timeout=15.0,
        limits=httpx.Limits(keepalive_expiry=IDLE_CONNECTION_SECONDS),
        event_hooks={"response": [_check_spec]},
    )


Node = Server  # one host of the cluster


@dataclass
class Cluster:
    a: Node
    b: Node
    core: Core  # the test's own view of the shared database (outbox, factor rows)
    http: httpx.Client
    admin_token: str = ""

    def ensure_running(self) -> None:
        dead = [node for node in (self.a, self.b) if not node.running()]
        for node in dead:
            node.stop()
            node.start()
        for node in dead:
            node.wait_healthy()

    def login(self, node: Node, email: str, password: str = PASSWORD) -> httpx.Response:
        return self.http.get(
            f"{node.api}/session/login", headers={"Authorization": basic(email, password)}
        )

    def get(self, node: Node, path: str, token: str) -> httpx.Response:
        return self.http.get(f"{node.api}{path}", headers={"X-Auth-Token": token})

    def post(self, node: Node, path: str, body: Any, token: str) -> httpx.Response:
        return self.http.post(f"{node.api}{path}", headers={"X-Auth-Token": token}, json=body)

    def create_user(self, label: str) -> tuple[str, str]:
        """A new user with PASSWORD, made by the admin on node B: (id, email)."""
        email = f"{label}-{uuid.uuid4().hex[:8]}@example.com"
        created = self.post(
            self.b, "/user/create", {"name": label, "email": email}, self.admin_token
        )
        assert created.status_code == 201, created.text
        reset_id = latest_link(self.core, email).rsplit("/", 1)[1]
        done = self.http.post(
            f"{self.a.api}/reset-password/reset/{reset_id}", json={"password": PASSWORD}
        )
        assert done.status_code == 200, done.text
        return str(created.json()["id"]), email

    def full_session(self, node: Node, email: str, password: str = PASSWORD) -> str:
        response = self.login(node, email, password)
        assert response.status_code == 200, response.text
        return str(response.json()["session_id"])

    def generate(self, node: Node, token: str) -> bytes:
        response = self.get(node, "/profile/2fa/generate", token)
        assert response.status_code == 200, response.text
        secret_b32 = response.json()["secret"]
        return base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))

    def enroll(self, email: str) -> tuple[bytes, str, list[str]]:
        """2FA for ``email``: generated on A, confirmed on B. (secret, token, recovery codes)"""
        secret = self.generate(self.a, self.full_session(self.a, email))
        token = self.full_session(self.b, email)  # set-mfa from another session than generate
        body = {"auth_type": "2FA", "code": totp.code_at(secret, time.time())}
        enrolled = self.post(self.b, "/profile/set-mfa", body, token)
        assert enrolled.status_code == 200, enrolled.text
        data = enrolled.json()
        return secret, data["session_ids"], data["recovery_codes"]


def login_with_code(
    http: httpx.Client, api: str, email: str, code: str, attempted: list[tuple[str, str]]
) -> httpx.Response:
    """Password, then ``code`` on the pending session. The code goes into
    ``attempted`` before it is sent: it may be spent even if no answer comes."""
    pending = http.get(f"{api}/session/login", headers={"Authorization": basic(email, PASSWORD)})
    assert pending.status_code == 207, pending.text
    attempted.append((email, code))
    return http.post(
        f"{api}/session/login",
        headers={"X-Auth-Token": pending.json()["session_id"]},
        json={"auth_type": "2FA", "code": code},
    )


def next_code(secret: bytes) -> str:
    """The next step's code: the enrollment spent the current one; ±1 step is allowed."""
    return totp.code_at(secret, time.time() + totp.PERIOD)


@contextmanager
def start_cluster(
    db_kind: str, database_template: str, folder: Path, extra_env: dict[str, str] | None = None
) -> Iterator[Cluster]:
    """Bootstrap a shared database with ``init`` on host A, copy the key to host B,
    start both nodes (with ``extra_env`` settings); kill them on the way out."""
    url = fresh_database(db_kind, database_template, folder)
    base = {k: v for k, v in os.environ.items() if not k.startswith("QUATRIX_MFA_")}
    base.update(
        {
            "QUATRIX_MFA_DATABASE_URL": url,
            "QUATRIX_MFA_ARGON2_MEMORY_KIB": "64",
            "QUATRIX_MFA_ARGON2_TIME_COST": "1",
            **(extra_env or {}),
        }
    )
    data_a, data_b = folder / "host-a", folder / "host-b"
    env_a = {**base, "QUATRIX_MFA_DATA_DIR": str(data_a)}
    env_b = {**base, "QUATRIX_MFA_DATA_DIR": str(data_b)}
    init_admin(env_a)
    data_b.mkdir(mode=0o700)
    shutil.copy(data_a / "keys.json", data_b / "keys.json")  # the one secret besides the db
    (data_b / "keys.json").chmod(0o600)
    test_view = Settings(
        data_dir=data_a, database_url=url, db_timeout_seconds=TEST_DB_TIMEOUT_SECONDS
    )
    core = build_core(test_view, SystemClock())
    built = Cluster(Node(env_a, "A"), Node(env_b, "B"), core, client())
    try:
        built.ensure_running()
        built.admin_token = built.full_session(built.b, ADMIN_EMAIL, ADMIN_PASSWORD)
        yield built
    finally:
        built.a.stop()
        built.b.stop()
        built.http.close()
        core.store.dispose()  # type: ignore[attr-defined]


def cluster_fixtures(label: str, extra_env: dict[str, str] | None = None) -> tuple[Any, Any]:
    """A test module's fixtures: ``cluster``, started once for the module (in a
    folder named ``label``, with ``extra_env`` settings), and ``nodes``, the same
    cluster with any node a test killed started again. In the module:
    ``cluster, nodes = cluster_fixtures("label")``."""

    @pytest.fixture(scope="module")
    def cluster(
        db_kind: str, database_template: str, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[Cluster]:
        folder = tmp_path_factory.mktemp(label)
        with start_cluster(db_kind, database_template, folder, extra_env) as built:
            yield built

    @pytest.fixture
    def nodes(cluster: Cluster) -> Cluster:
        cluster.ensure_running()  # a test may have killed a node
        return cluster

    return cluster, nodes
