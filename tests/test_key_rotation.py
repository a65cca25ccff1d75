"""Issue 16, item 3: rotation in two steps on three nodes under load, and a
re-encryption stopped halfway and resumed. The nodes are in-process apps on
one database, each with its own copy of the key file, as on three hosts; the
``keys`` commands run as real processes."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from quatrix_mfa.api.app import build_core
from quatrix_mfa.core.bootstrap import bootstrap
from quatrix_mfa.core.factors import totp
from quatrix_mfa.core.keyrotation import reencrypt_all
from quatrix_mfa.core.model import Credential, User
from quatrix_mfa.keys import read_key_file
from quatrix_mfa.settings import Settings
from quatrix_mfa.storage.keystate import KeyState
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api
from tests.servers import CLI
from tests.support.keys import copy_key_file, run_keys


class Load(threading.Thread):
    """Second-factor logins, round-robin over the nodes, until stopped."""

    def __init__(self, nodes: list[Api], secret: str) -> None:
        super().__init__(daemon=True)
        self.nodes, self.secret = nodes, secret
        self.statuses: list[tuple[str, int, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        turn = 0
        while not self.stop.is_set():
            node = self.nodes[turn % len(self.nodes)]
            turn += 1
            pending = node.login(ADMIN_EMAIL, ADMIN_PASSWORD)
            self.statuses.append(("login", pending.status_code, pending.text))
            if pending.status_code != 207:
                continue
            code = {"auth_type": "2FA", "code": node.code(self.secret)}
            done = node.post("/session/login", code, pending.json()["session_id"])
            self.statuses.append(("code", done.status_code, done.text))
            node.clock.advance(30)  # the next code is a new one


def test_three_node_rotation_in_two_steps_answers_no_error_under_load(
    make_api: Any, settings: Settings, tmp_path: Path
) -> None:
    files = [tmp_path / f"node-{n}" / "keys.json" for n in "abc"]
    for path in files:
        copy_key_file(settings.key_file, path)
    nodes: list[Api] = [
        make_api(node_id=f"node-{n}", keys_file=path) for n, path in zip("abc", files, strict=True)
    ]
    assert bootstrap(nodes[0].core, ADMIN_EMAIL, "Example", ADMIN_PASSWORD).created
    _, secret, _ = nodes[0].enroll_totp(nodes[0].full_session())
    seed_totp_users(nodes[0], 40)

    def heartbeats() -> None:
        for node in nodes:
            node.http.app.state.node.beat()  # type: ignore[attr-defined]

    load = Load(nodes, secret)
    load.start()
    try:
        added = run_keys(settings, files[0], "add")
        assert added.returncode == 0, added.stderr
        assert "Added key k2 (inactive)" in added.stdout
        copy_key_file(files[0], files[1])  # copied to two of three nodes
        heartbeats()
        refused = run_keys(settings, files[0], "activate", "k2")
        assert refused.returncode == 2, refused.stderr
        assert "1 live node(s) do not hold key k2 yet (node-c)" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert KeyState(nodes[0].core.store.engine).active_key_id() == "k1"  # type: ignore[attr-defined]

        copy_key_file(files[0], files[2])
        heartbeats()
        activated = run_keys(settings, files[0], "activate", "k2")
        assert activated.returncode == 0, activated.stderr
        assert "Key k2 is active; re-encrypted 41 secret(s)" in activated.stdout
        time.sleep(0.5)  # a few more logins under the new key
    finally:
        load.stop.set()
        load.join(timeout=30)
    codes = [status for _, status, _ in load.statuses]
    assert len(codes) > 10
    bad = [(what, status, text) for what, status, text in load.statuses if status >= 300]
    assert not bad, bad[:3]

    state = KeyState(nodes[0].core.store.engine)  # type: ignore[attr-defined]
    assert state.key_ids_in_use() == {"k2"}
    retired = run_keys(settings, files[0], "retire", "k1")
    assert retired.returncode == 0, retired.stderr
    assert "k1" not in read_key_file(files[0])["keys"]
    for path in files[1:]:
        copy_key_file(files[0], path)
    heartbeats()
    for node in nodes:
        assert node.http.get("http://testserver/readyz").status_code == 200


def seed_totp_users(api: Api, count: int) -> dict[str, bytes]:
    """``count`` users with a TOTP seed each, sealed under the active key."""
    core, now = api.core, time.time()
    seeds: dict[str, bytes] = {}
    with core.store.transaction() as tx:
        account = tx.accounts.first()
        assert account is not None
        for n in range(count):
            user = User(str(uuid.uuid4()), account.id, f"seed{n}@example.com", "S", now, now)
            user.twofa_active = True
            tx.users.add(user)
            seeds[user.id] = totp.new_secret()
            sealed, key_id = core.box.seal(seeds[user.id], user.id)
            tx.credentials.add(Credential(str(uuid.uuid4()), user.id, "totp", sealed, key_id, now))
    return seeds


class Crash(Exception):
    pass


def test_a_rotation_stopped_halfway_is_resumed_by_running_activate_again(
    make_api: Any, settings: Settings
) -> None:
    api: Api = make_api(node_id="only-node")
    # No password: the admin's set-password link waits in the outbox, under k1.
    assert bootstrap(api.core, ADMIN_EMAIL, "Example", None).created
    seeds = seed_totp_users(api, 450)  # more than two batches of 200
    added = run_keys(settings, settings.key_file, "add")
    assert added.returncode == 0, added.stderr
    api.http.app.state.node.beat()  # type: ignore[attr-defined]  # the node holds k2 now
    state = KeyState(api.core.store.engine)  # type: ignore[attr-defined]
    state.activate("k2")
    rotator = build_core(settings)

    def crash_after_first_batch(progress: Any) -> None:
        raise Crash(progress.done)

    with pytest.raises(Crash):
        reencrypt_all(rotator, "k2", crash_after_first_batch)
    rotator.store.dispose()  # type: ignore[attr-defined]
    halfway = state.count_under("k2")
    assert 0 < halfway < 450

    resumed = run_keys(settings, settings.key_file, "activate", "k2")
    assert resumed.returncode == 0, resumed.stderr
    assert f"re-encrypted {450 - halfway} secret(s)" in resumed.stdout
    again = run_keys(settings, settings.key_file, "activate", "k2")
    assert "re-encrypted 0 secret(s)" in again.stdout  # idempotent
    with api.core.store.transaction(write=False) as tx:
        for user_id, seed in seeds.items():
            (row,) = tx.credentials.of_user(user_id, "totp")
            assert row.key_id == "k2"
            assert api.core.box.open(row.secret, "k2", user_id) == seed

    # Mail is not re-encrypted: retiring k1 waits until the mail is gone.
    waiting = run_keys(settings, settings.key_file, "retire", "k1")
    assert waiting.returncode == 2, waiting.stderr
    assert "1 secret(s) are still sealed under key k1 (1 in undelivered mail" in waiting.stderr
    with api.core.store.transaction() as tx:
        for mail in tx.outbox.list(10):
            tx.outbox.mark_sent(mail.id, time.time())  # delivered: its sealed link is dropped
    retired = run_keys(settings, settings.key_file, "retire", "k1")
    assert retired.returncode == 0, retired.stderr
    assert set(read_key_file(settings.key_file)["keys"]) == {"k2"}
    # A key neither the file nor the database knows (a typo, or retired
    # already) is refused: nothing said "retired" that was not.
    before = settings.key_file.read_bytes()
    for unknown in ("k1", "k9"):
        typo = run_keys(settings, settings.key_file, "retire", unknown)
        assert typo.returncode == 2, typo.stderr
        assert typo.stderr.splitlines() == [
            f"error: refused: there is no key {unknown} in {settings.key_file}"
        ]
        assert typo.stdout == ""
    assert settings.key_file.read_bytes() == before


def test_rotate_key_the_one_node_shortcut_refuses_with_two_live_nodes(
    make_api: Any, settings: Settings, tmp_path: Path
) -> None:
    copy = tmp_path / "node-b" / "keys.json"
    copy_key_file(settings.key_file, copy)
    make_api(node_id="node-a")
    make_api(node_id="node-b", keys_file=copy)
    before = settings.key_file.read_bytes()
    result = subprocess.run(
        [*CLI, "rotate-key"],
        env={
            "PATH": "/usr/bin:/bin",
            "QUATRIX_MFA_DATA_DIR": str(settings.data_dir),
            "QUATRIX_MFA_DATABASE_URL": settings.effective_database_url,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "2 nodes are live (node-a, node-b)" in line and "keys add" in line
    assert settings.key_file.read_bytes() == before  # nothing written


def test_a_secret_that_cannot_be_opened_is_reported_and_the_rest_re_encrypted(
    make_api: Any, settings: Settings
) -> None:
    api: Api = make_api(node_id="only-node")
    assert bootstrap(api.core, ADMIN_EMAIL, "Example", ADMIN_PASSWORD).created
    seeds = seed_totp_users(api, 5)
    damaged = next(iter(seeds))
    with api.core.store.transaction() as tx:
        (row,) = tx.credentials.of_user(damaged, "totp")
        broken = bytes([row.secret[0] ^ 1]) + row.secret[1:]
        assert tx.credentials.reencrypt("credentials", damaged, row.secret, broken, "k1")
    added = run_keys(settings, settings.key_file, "add")
    assert added.returncode == 0, added.stderr
    api.http.app.state.node.beat()  # type: ignore[attr-defined]
    result = run_keys(settings, settings.key_file, "activate", "k2")
    assert result.returncode == 0, result.stderr
    assert "re-encrypted 4 secret(s)" in result.stdout
    assert f"cannot open a secret in credentials of user {damaged} under key k1" in result.stderr
    state = KeyState(api.core.store.engine)  # type: ignore[attr-defined]
    assert state.count_under("k1") == 1 and state.count_under("k2") == 4
