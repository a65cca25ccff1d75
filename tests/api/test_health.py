"""Load-balancer probes: /healthz (process up) and /readyz (database usable)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from quatrix_mfa.api.app import create_app
from quatrix_mfa.keys import create_key_file
from quatrix_mfa.settings import Settings
from tests.conftest import FAST_ARGON2, Api


def probe(settings: Settings, path: str) -> tuple[int, dict[str, object]]:
    create_key_file(settings.key_file)  # as init made it
    with TestClient(create_app(settings, background=False)) as http:
        response = http.get(path)
        return response.status_code, response.json()


def test_a_migrated_database_is_ready(api: Api) -> None:
    assert api.http.get("http://testserver/healthz").json() == {"status": "ok"}
    response = api.http.get("http://testserver/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ready"})


def test_a_database_without_the_schema_is_not_ready(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'empty.db'}", argon2=FAST_ARGON2
    )
    assert probe(settings, "/healthz")[0] == 200
    status, body = probe(settings, "/readyz")
    assert status == 503 and body["code"] == -1 and "msg" in body


def test_an_unreachable_database_is_not_ready_but_the_process_is_up(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, database_url="postgresql://nobody@127.0.0.1:1/none", argon2=FAST_ARGON2
    )
    assert probe(settings, "/healthz") == (200, {"status": "ok"})
    assert probe(settings, "/readyz")[0] == 503
