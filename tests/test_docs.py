"""The docs name real things: every test that docs/security.md cites exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# `tests/x.py`, `tests/x.py::test_y`, or `::test_y` (the file named last before it).
CITATION = re.compile(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`")


def cited_tests(text: str) -> list[tuple[str, str | None]]:
    cited: list[tuple[str, str | None]] = []
    current = None
    for match in CITATION.finditer(text):
        path, name = match.group(1), match.group(2)
        current = path or current
        if current and (path or name):
            cited.append((current, name))
    return cited


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def test_citation_reader_follows_the_last_file_named() -> None:
    text = "`tests/a.py::test_one`, `::test_two`; `tests/b.py`"
    assert cited_tests(text) == [
        ("tests/a.py", "test_one"),
        ("tests/a.py", "test_two"),
        ("tests/b.py", None),
    ]


def test_every_test_cited_in_the_security_map_exists() -> None:
    cited = cited_tests((ROOT / "docs" / "security.md").read_text())
    assert len(cited) > 50
    missing = []
    for path, name in cited:
        file = ROOT / path
        if not file.is_file() or (name is not None and name not in defined_tests(file)):
            missing.append(f"{path}::{name}" if name else path)
    assert missing == []
