"""WCAG 2.1 AA: axe-core, run in Chromium, finds no serious or critical
violation on any page, at phone and desktop width, in light and dark mode.

The pages are the one table ``tests/support/pages.py`` ``PAGES`` (each entry
brings the browser to its page with the user and state it needs).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.support.axe import assert_accessible
from tests.support.browser import Admin
from tests.support.pages import PAGES


@pytest.mark.parametrize("name", PAGES)
def test_no_serious_or_critical_accessibility_violation(
    page: Page, admin: Admin, name: str
) -> None:
    PAGES[name](page, admin)
    assert_accessible(page)


def test_the_check_fails_on_a_violation(page: Page) -> None:
    page.goto("/login")
    page.locator("form").evaluate(
        "form => form.append(Object.assign(document.createElement('input'), {name: 'x'}))"
    )
    with pytest.raises(AssertionError, match="label"):
        assert_accessible(page)
