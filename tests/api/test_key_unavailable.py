"""Issue 16, item 2: a node whose key file lacks a key the database uses is
not ready (503 saying why), and a request that meets a secret under that key
answers 503 with an ErrorModel (never 500), audited, logged once per key id."""

from __future__ import annotations

import base64
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from quatrix_mfa.core.bootstrap import bootstrap
from quatrix_mfa.keys import create_key_file, read_key_file
from quatrix_mfa.settings import Settings
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, error


def lacking_copy(settings: Settings, folder: Path) -> Path:
    """The deployment's key file without k1: a node the file never fully reached."""
    content = read_key_file(settings.key_file)
    path = folder / "node-b-keys.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(
            {
                "active": "k2",
                "keys": {"k2": base64.b64encode(os.urandom(32)).decode()},
                "hmac": base64.b64encode(content["hmac"]).decode(),
            },
            handle,
        )
    return path


def test_a_node_lacking_a_key_in_use_is_not_ready_and_answers_503_not_500(
    make_api: Any, settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    node_a: Api = make_api(node_id="node-a")
    assert bootstrap(node_a.core, ADMIN_EMAIL, "Example", ADMIN_PASSWORD).created
    _, secret, _ = node_a.enroll_totp(node_a.full_session())

    node_b: Api = make_api(node_id="node-b", keys_file=lacking_copy(settings, tmp_path))
    ready = node_b.http.get("http://testserver/readyz")
    body = error(ready, 503, -1)
    assert "lacks key(s) k1" in body["msg"]
    assert node_a.http.get("http://testserver/readyz").status_code == 200

    caplog.set_level(logging.ERROR)
    for _ in range(3):
        pending = node_b.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        assert pending.status_code == 207, pending.text
        answer = node_b.post(
            "/session/login",
            {"auth_type": "2FA", "code": node_b.code(secret)},
            pending.json()["session_id"],
        )
        error(answer, 503, -1)
        assert answer.headers["Retry-After"].isdigit()
    logged = [r for r in caplog.records if "key k1" in r.getMessage()]
    assert len(logged) == 1, [r.getMessage() for r in logged]

    with node_a.core.store.transaction(write=False) as tx:
        events = [e for e in tx.audit.list(None, 100) if e.event == "keys.unavailable"]
    assert len(events) == 3
    assert all(e.outcome == "failure" and e.detail.pop("request_id") for e in events)
    assert all(e.detail == {"key_id": "k1"} for e in events)

    # The user is not locked out: the node with the whole file lets them in.
    pending = node_a.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    done = node_a.post(
        "/session/login",
        {"auth_type": "2FA", "code": node_a.code(secret)},
        pending.json()["session_id"],
    )
    assert done.status_code == 200, done.text


def test_a_node_with_another_deployments_key_file_is_not_ready(
    make_api: Any, tmp_path: Path
) -> None:
    make_api(node_id="node-a")  # registers this deployment's keys
    foreign = tmp_path / "foreign" / "keys.json"
    create_key_file(foreign)
    node_b: Api = make_api(node_id="node-b", keys_file=foreign)
    body = error(node_b.http.get("http://testserver/readyz"), 503, -1)
    assert "not this database's" in body["msg"]
