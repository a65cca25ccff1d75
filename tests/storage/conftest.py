from __future__ import annotations

import pytest

from quatrix_mfa.core.context import Core
from quatrix_mfa.core.model import Account
from tests.support.storage import new_account


@pytest.fixture
def account(core: Core) -> Account:
    with core.store.transaction() as tx:
        return new_account(tx)
