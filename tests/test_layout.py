"""The test suite's own layout: what test modules share lives in tests/support/
(or a helper module: conftest, servers, multinode_support, spec), never in
another test module, so moving or deleting one test file breaks no other."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported_test_modules(path: Path) -> list[str]:
    """The ``tests...test_*`` modules that the file at ``path`` imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found += [
            name
            for name in names
            if name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_")
        ]
    return found


def test_no_test_module_imports_another() -> None:
    offenders = {
        str(path.relative_to(TESTS)): imported
        for path in sorted(TESTS.rglob("*.py"))
        if (imported := imported_test_modules(path))
    }
    assert offenders == {}, "move shared helpers to tests/support/"


def test_the_check_sees_both_spellings_of_an_import(tmp_path: Path) -> None:
    module = tmp_path / "test_x.py"
    module.write_text(
        "from tests.api.test_login import wrong_code\n"
        "import tests.storage.test_contract\n"
        "from tests.api import test_users\n"
        "from tests.support.codes import wrong_code as w\n"
    )
    assert imported_test_modules(module) == [
        "tests.api.test_login",
        "tests.storage.test_contract",
        "tests.api.test_users",
    ]
