"""Log capture for tests that prove a secret is never logged."""

from __future__ import annotations

import logging

import pytest


def capture_every_log(caplog: pytest.LogCaptureFixture) -> None:
    """Every logger at DEBUG, SQLAlchemy's (statements, parameters, rows) included:
    it sets its own level at import, so the root's level alone is not enough."""
    for name in [None, *logging.root.manager.loggerDict]:
        caplog.set_level(logging.DEBUG, logger=name)
