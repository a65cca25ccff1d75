"""How ``serve`` builds the app (``app_from_env``)."""

from __future__ import annotations

import gc
import inspect
from pathlib import Path

import pytest

from quatrix_mfa.api.app import app_from_env, create_app
from quatrix_mfa.keys import create_key_file
from quatrix_mfa.settings import Settings
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, FAST_ARGON2, Api


def test_the_served_app_moves_what_it_built_out_of_the_collectors_sight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full collection scanned every object built at start-up, pausing all
    # requests in flight for ~50 ms; frozen objects are not scanned.
    monkeypatch.setenv("QUATRIX_MFA_DATA_DIR", str(tmp_path))
    create_key_file(tmp_path / "keys.json")
    gc.unfreeze()
    try:
        app = app_from_env()
        frozen = gc.get_freeze_count()
        app.state.core.store.dispose()
    finally:
        gc.unfreeze()
    assert frozen > 10_000


def test_error_answers_need_no_worker_thread(tmp_path: Path) -> None:
    # Starlette runs a plain ``def`` exception handler in the thread pool: a hop
    # that cost twice the rest of an error answer (a wrong code, a 401, ...).
    create_key_file(tmp_path / "keys.json")
    app = create_app(Settings(data_dir=tmp_path, argon2=FAST_ARGON2), background=False)
    try:
        handlers = dict(app.exception_handlers)
        assert len(handlers) >= 4
        for kind, handler in handlers.items():
            assert inspect.iscoroutinefunction(handler), kind
    finally:
        app.state.core.store.dispose()


def test_no_api_answer_may_be_cached(api: Api, admin_token: str) -> None:
    """Session ids, TOTP secrets and recovery codes must never sit in a shared
    cache: the credential is X-Auth-Token, which caches do not treat like
    Authorization (found by the round's outside attack)."""
    answers = [
        api.get("/profile/2fa/generate", admin_token),
        api.login(ADMIN_EMAIL, ADMIN_PASSWORD),
        api.get("/profile", admin_token),
        api.get("/profile", "not-a-token"),  # an error answer too
        api.post("/user/create", {"name": "x" * 70_000}, admin_token),  # refused before the app
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 401, 413]
    assert [a.headers.get("Cache-Control") for a in answers] == ["no-store"] * len(answers)
