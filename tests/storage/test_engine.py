"""storage/engine.py: which URLs name an SQLite file, the one place that decides
where the writer and migration lock files go and which file is made 0600 (that
file's mode, under umask 0, is proven through ``init`` in tests/test_startup.py)."""

from __future__ import annotations

import pytest

from quatrix_mfa.storage.engine import sqlite_file


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////var/lib/quatrix-mfa/quatrix-mfa.db", "/var/lib/quatrix-mfa/quatrix-mfa.db"),
        ("sqlite:///relative.db", "relative.db"),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///file:shared?mode=memory&cache=shared&uri=true", None),
        ("postgresql://postgres@127.0.0.1:5432/quatrix", None),
        ("postgresql+psycopg://postgres@127.0.0.1/sqlite.db", None),
    ],
)
def test_only_a_file_database_has_a_file(url: str, expected: str | None) -> None:
    assert sqlite_file(url) == expected
