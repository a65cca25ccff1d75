"""What the in-process page tests of the account share: reading a secret off a
page, changing a user or the account behind the pages' back, the sessions
of a user, and other people and sessions made through core."""

from __future__ import annotations

import base64
import re
from typing import Any

from quatrix_mfa.core.context import Core
from quatrix_mfa.core.factors import totp
from quatrix_mfa.core.sessions import token_hash
from tests.support.core_driver import CoreDriver
from tests.support.scenario import ADMIN_EMAIL, Scenario

_KEY = re.compile(r'data-totp-secret="([A-Z2-7]+)"')
_CODES = re.compile(r"<code data-recovery-code>([0-9A-Z-]+)</code>")
_HANDLE = re.compile(r'name="session" value="([0-9a-f]+)"')


def totp_key(html: str) -> bytes:
    """The seed of the TOTP key a page shows in ``data-totp-secret``."""
    found = _KEY.search(html)
    assert found, "no data-totp-secret on the page"
    key = found.group(1)
    return base64.b32decode(key + "=" * (-len(key) % 8))


def recovery_codes(html: str) -> list[str]:
    return _CODES.findall(html)


def session_handles(html: str) -> list[str]:
    """The handles of the sessions the sessions page offers to sign out."""
    return _HANDLE.findall(html)


def code_now(site: Any, seed: bytes) -> str:
    return totp.code_at(seed, site.clock.now())


def edit_user(core: Core, email: str = ADMIN_EMAIL, **changes: Any) -> None:
    """Change a user's row directly (no session closes): e.g. ``pin_forced``."""
    with core.store.transaction() as tx:
        user = tx.users.by_email(email)
        assert user is not None
        for name, value in changes.items():
            setattr(user, name, value)
        tx.users.save(user)


def edit_account(core: Core, **changes: Any) -> None:
    """Change the admin's account settings directly (e.g. ``force_2fa``)."""
    with core.store.transaction() as tx:
        user = tx.users.by_email(ADMIN_EMAIL)
        assert user is not None
        account = tx.accounts.get(user.account_id)
        assert account is not None
        for name, value in changes.items():
            setattr(account, name, value)
        tx.accounts.save(account)


def people(site: Any) -> tuple[CoreDriver, Scenario]:
    """The driver and scenario builder over the site's core (its clock), for
    people and API sessions made without the pages."""
    driver = CoreDriver(site.core, site.clock)
    return driver, Scenario(driver)


def alive(core: Core, token: str) -> bool:
    """Whether ``token`` is an open session (of any kind), as stored."""
    with core.store.transaction(write=False) as tx:
        return tx.sessions.get_with_owner(token_hash(core, token)) is not None
