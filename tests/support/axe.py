"""axe-core (Deque's accessibility engine, from npm: tests/web/axe) run in the
browser on a page, failing on any serious or critical violation.

The script is handed to the page with ``page.evaluate``: that runs through the
DevTools protocol, which the page's Content-Security-Policy does not govern,
so the page keeps its real CSP (no bypass) while axe checks it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

AXE = (
    Path(__file__).resolve().parents[1] / "web" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
)
FAILING = ("serious", "critical")
SCHEMES = ("light", "dark")


@functools.cache
def axe_source() -> str:
    assert AXE.exists(), f"{AXE} missing: run 'npm ci' in tests/web/axe (scripts/test does)"
    return AXE.read_text(encoding="utf-8")


def violations(page: Page) -> list[dict[str, Any]]:
    """axe's violations of the page as it is now (every rule but experimental ones)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    found: list[dict[str, Any]] = page.evaluate(
        "() => axe.run(document, {resultTypes: ['violations']}).then(r => r.violations)"
    )
    return found


def assert_accessible(page: Page) -> None:
    """No serious or critical violation, in the light and in the dark colour
    scheme (the stylesheet follows the system's), listed if there are any."""
    problems = []
    try:
        for scheme in SCHEMES:
            page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
            for violation in violations(page):
                if violation["impact"] in FAILING:
                    targets = [" ".join(map(str, node["target"])) for node in violation["nodes"]]
                    problems.append(
                        f"{scheme}: {violation['impact']} {violation['id']} "
                        f"({violation['help']}): {', '.join(targets[:5])}"
                    )
    finally:
        page.emulate_media(color_scheme="no-preference")  # type: ignore[arg-type]
    assert not problems, f"axe on {page.url}:\n" + "\n".join(problems)
