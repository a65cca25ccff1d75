"""Core is plain Python: no web framework, no ORM, no knowledge of api/ or storage/."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "quatrix_mfa"
CORE = PACKAGE / "core"
FORBIDDEN = (
    "fastapi",
    "starlette",
    "sqlalchemy",
    "alembic",
    "uvicorn",
    "quatrix_mfa.api",
    "quatrix_mfa.storage",
    "quatrix_mfa.cli",
)
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved, lazy ones included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(str(node.args[0].value))
    return found


def _forbidden(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


def core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_the_import_scanner_sees_imports() -> None:
    # Guards the guard: if the scanner found nothing, the next test would pass vacuously.
    assert len(core_files()) >= 10
    assert "quatrix_mfa.core.ports" in imported_modules(CORE / "context.py")
    assert "sqlalchemy" in imported_modules(PACKAGE / "storage" / "store.py")
    assert _forbidden("quatrix_mfa.storage.tables")
    assert not _forbidden("quatrix_mfa.storagex")


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_imports_no_framework_orm_api_or_storage(path: Path) -> None:
    bad = sorted(m for m in imported_modules(path) if _forbidden(m))
    assert bad == [], f"{path.relative_to(ROOT)} imports {bad}"


def test_import_linter_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "core is plain code: no web framework, no ORM KEPT" in result.stdout
    assert " 0 broken" in result.stdout


def test_no_source_module_exceeds_500_lines() -> None:
    sources = sorted((ROOT / "src").rglob("*.py"))
    assert sources
    too_long = {
        str(p.relative_to(ROOT)): n
        for p in sources
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert too_long == {}
