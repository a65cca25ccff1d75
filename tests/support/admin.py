"""Seeding an account for the admin console's tests: many users at once,
straight through the storage port (no mail, no hashing), and a signed-up
non-administrator."""

from __future__ import annotations

import html
import re
import uuid
from typing import Any, Protocol

from quatrix_mfa.core.context import Core
from quatrix_mfa.core.model import Account, User
from tests.conftest import ADMIN_EMAIL

PASSWORD = "a long admin-test passphrase"


def admin_account(core: Core) -> Account:
    """The account of the bootstrap administrator."""
    with core.store.transaction(write=False) as tx:
        admin = tx.users.by_email(ADMIN_EMAIL)
        assert admin is not None
        account = tx.accounts.get(admin.account_id)
    assert account is not None
    return account


def add_users(
    core: Core, count: int, prefix: str = "user", *, password: bool = False, **fields: object
) -> list[User]:
    """``count`` users ``<prefix>NNN@example.com`` named ``Person NNN`` in the
    administrator's account; with ``password`` they can sign in with PASSWORD."""
    account = admin_account(core)
    now = core.clock.now()
    hashed = core.passwords.hash(PASSWORD) if password else None
    users = [
        User(
            id=str(uuid.uuid4()),
            account_id=account.id,
            email=f"{prefix}{n:03d}@example.com",
            name=f"Person {n:03d}",
            created=now,
            modified=now,
            password_hash=hashed,
            **fields,  # type: ignore[arg-type]
        )
        for n in range(count)
    ]
    with core.store.transaction() as tx:
        for user in users:
            tx.users.add(user)
    return users


def stored(core: Core, email: str) -> User:
    """The user as stored now."""
    with core.store.transaction(write=False) as tx:
        user = tx.users.by_email(email)
    assert user is not None, email
    return user


def emails_on(page_html: str) -> list[str]:
    """The emails of the user rows of a list page, in order."""
    return re.findall(r'<tr data-user="([^"]+)">', page_html)


def next_link(page_html: str) -> str | None:
    found = re.search(r'<a href="([^"]+)" rel="next">', page_html)
    return html.unescape(found.group(1)) if found else None


class HasGet(Protocol):
    def get(self, path: str) -> Any: ...


def walk(site: HasGet, path: str) -> list[str]:
    """Every page of a paged list from ``path`` on, following its "next"
    links (each must answer 200); their HTML in order."""
    pages: list[str] = []
    link: str | None = path
    while link:
        page = site.get(link)
        assert page.status_code == 200, link
        pages.append(page.text)
        link = next_link(page.text)
        assert len(pages) < 100, "no end"
    return pages
