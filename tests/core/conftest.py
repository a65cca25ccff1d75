"""Core-level fixtures: the use cases driven without HTTP, on the same
database and fake clock as the API tests, through the shared scenarios."""

from __future__ import annotations

import pytest

from quatrix_mfa.core.clock import FakeClock
from quatrix_mfa.core.context import Core
from tests.support.core_driver import CoreDriver
from tests.support.scenario import Scenario


@pytest.fixture
def driver(core: Core, clock: FakeClock) -> CoreDriver:
    """Core with its first account and admin, as ``quatrix-mfa init`` leaves it."""
    built = CoreDriver(core, clock)
    built.bootstrap_admin()
    return built


@pytest.fixture
def scenario(driver: CoreDriver) -> Scenario:
    return Scenario(driver)
