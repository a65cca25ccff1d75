"""How ``serve`` builds the app (``app_from_env``)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from quatrix_mfa.api.app import app_from_env


def test_the_served_app_moves_what_it_built_out_of_the_collectors_sight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full collection scanned every object built at start-up, pausing all
    # requests in flight for ~50 ms; frozen objects are not scanned.
    monkeypatch.setenv("QUATRIX_MFA_DATA_DIR", str(tmp_path))
    gc.unfreeze()
    try:
        app = app_from_env()
        frozen = gc.get_freeze_count()
        app.state.core.store.dispose()
    finally:
        gc.unfreeze()
    assert frozen > 10_000
