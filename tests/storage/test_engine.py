"""storage/engine.py: which URLs name an SQLite file, the one place that decides
where the writer and migration lock files go and which file is made 0600."""

from __future__ import annotations

from pathlib import Path

import pytest

from quatrix_mfa.storage.engine import make_engine, sqlite_file


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


def test_a_new_database_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    engine = make_engine(f"sqlite:///{path}")
    engine.dispose()
    assert path.stat().st_mode & 0o777 == 0o600
