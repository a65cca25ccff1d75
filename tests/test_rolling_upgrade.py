"""Issue 16, item 4: a rolling upgrade and a rollback under load, with no
answer other than 2xx. Today's code is the old release; a copy of it with
one added migration (the next revision, expand only: a new table, and "today's
head still works")
is the new one. Two nodes share the database; a node leaving for a restart
is first taken out of the load's rotation, as a load balancer would."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

import quatrix_mfa
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, basic
from tests.servers import free_port, init_admin, wait_healthy
from tests.support.revisions import HEAD, NEXT

NEXT_MIGRATION = f'''"""upgrade probe (a test's new release)

Revision ID: {NEXT}
Revises: {HEAD}
"""

import sqlalchemy as sa
from alembic import op

revision = "{NEXT}"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The probe keeps what schema_compat said, for its downgrade to put back.
    op.create_table(
        "upgrade_probe",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("oldest_before", sa.String(32), nullable=False),
    )
    op.execute(
        "INSERT INTO upgrade_probe (id, oldest_before) "
        "SELECT 1, oldest_code_revision FROM schema_compat WHERE id = 1"
    )
    op.execute("UPDATE schema_compat SET oldest_code_revision = \'{HEAD}\'")


def downgrade() -> None:
    op.execute(
        "UPDATE schema_compat SET oldest_code_revision = "
        "(SELECT oldest_before FROM upgrade_probe WHERE id = 1)"
    )
    op.drop_table("upgrade_probe")
'''


def new_release(folder: Path) -> Path:
    """A copy of today's package with the next migration added; its path to import from."""
    root = folder / "new-release"
    shutil.copytree(Path(quatrix_mfa.__file__).parent, root / "quatrix_mfa")
    versions = root / "quatrix_mfa" / "storage" / "migrations" / "versions"
    (versions / f"{NEXT}_upgrade_probe.py").write_text(NEXT_MIGRATION)
    return root


class Node:
    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name, self.env, self.port = name, env, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, release: Path | None, *args: str) -> None:
        env = dict(self.env, QUATRIX_MFA_PUBLIC_URL=self.url)
        if release is not None:
            env["PYTHONPATH"] = str(release)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "quatrix_mfa.cli", "serve", "--port", str(self.port), *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_healthy(self.url, self.process)
        assert self.ready(), f"{self.name} not ready"

    def ready(self) -> bool:
        return httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


class Load(threading.Thread):
    """Logins and profile reads on the nodes in rotation, until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.rotation: list[Node] = []
        self.lock = threading.Lock()
        self.answers: list[tuple[str, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        turn = 0
        with httpx.Client(timeout=10) as http:
            while not self.stop.is_set():
                with self.lock:  # held for the whole request: a node leaves only between them
                    node = self.rotation[turn % len(self.rotation)]
                    turn += 1
                    login = http.get(
                        f"{node.url}/api/1.0/session/login",
                        headers={"Authorization": basic(ADMIN_EMAIL, ADMIN_PASSWORD)},
                    )
                    self.answers.append((node.name, login.status_code))
                    if login.status_code == 200:
                        token = login.json()["session_id"]
                        profile = http.get(
                            f"{node.url}/api/1.0/profile", headers={"X-Auth-Token": token}
                        )
                        self.answers.append((node.name, profile.status_code))

    def leave(self, node: Node) -> None:
        with self.lock:
            self.rotation.remove(node)

    def join_rotation(self, node: Node) -> None:
        with self.lock:
            self.rotation.append(node)


def cli(env: dict[str, str], release: Path | None, *args: str) -> Any:
    env = dict(env, **({"PYTHONPATH": str(release)} if release else {}))
    return subprocess.run(
        [sys.executable, "-m", "quatrix_mfa.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_rolling_upgrade_and_rollback_under_load_answer_only_2xx(
    tmp_path: Path, database_url: str
) -> None:
    base = {
        "PATH": "/usr/bin:/bin",
        "QUATRIX_MFA_DATABASE_URL": database_url,
        "QUATRIX_MFA_ARGON2_MEMORY_KIB": "64",
        "QUATRIX_MFA_ARGON2_TIME_COST": "1",
        "QUATRIX_MFA_USER_FAILURE_THRESHOLD": "1000",
    }
    env_a = dict(base, QUATRIX_MFA_DATA_DIR=str(tmp_path / "a"))
    env_b = dict(base, QUATRIX_MFA_DATA_DIR=str(tmp_path / "b"))
    init_admin(env_a)
    (tmp_path / "b").mkdir(mode=0o700)
    shutil.copy(tmp_path / "a" / "keys.json", tmp_path / "b" / "keys.json")
    (tmp_path / "b" / "keys.json").chmod(0o600)
    new = new_release(tmp_path)

    a, b = Node("a", env_a), Node("b", env_b)
    load = Load()
    try:
        for node in (a, b):
            node.start(None)  # the old release
            load.join_rotation(node)
        load.start()

        # 1. The new release migrates the schema; the old nodes keep serving, ready.
        migrated = cli(env_a, new, "migrate")
        assert migrated.returncode == 0, migrated.stderr
        assert f"Schema at revision {NEXT}" in migrated.stdout
        assert a.ready() and b.ready()

        # 2. Rolling: one node at a time, out of rotation, new code, back in.
        for node in (a, b):
            load.leave(node)
            node.stop()
            node.start(new, "--no-migrate")
            load.join_rotation(node)

        # 3. Rollback: the old release again, on the newer schema.
        for node in (a, b):
            load.leave(node)
            node.stop()
            node.start(None, "--no-migrate")
            load.join_rotation(node)

        # 4. The new schema goes, with the new release's migrate; still ready.
        down = cli(env_a, new, "migrate", "--to", HEAD)
        assert down.returncode == 0, down.stderr
        assert a.ready() and b.ready()
    finally:
        load.stop.set()
        if load.is_alive():
            load.join(timeout=30)
        a.stop()
        b.stop()
        cli(env_a, new, "migrate", "--to", HEAD)  # the PostgreSQL run shares the database
    assert len(load.answers) > 20
    assert {name for name, _ in load.answers} == {"a", "b"}
    bad = [(name, status) for name, status in load.answers if not 200 <= status < 300]
    assert not bad, bad[:5]
