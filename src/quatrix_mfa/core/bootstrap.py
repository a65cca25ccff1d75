"""The first account and its administrator (``quatrix-mfa init``), never via HTTP."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from quatrix_mfa.core import audit, passwords
from quatrix_mfa.core.admin import parse_email
from quatrix_mfa.core.context import Core
from quatrix_mfa.core.model import Account, User
from quatrix_mfa.core.reset import issue_link


@dataclass(frozen=True)
class Bootstrap:
    created: bool
    account: Account
    admin_email: str
    link: str | None = None


def bootstrap(core: Core, email: str, account_name: str, password: str | None) -> Bootstrap:
    """Create the first account and admin once; later runs change nothing."""
    email = parse_email(email)
    if password is not None:
        passwords.check_strength(password, email)
    hashed = core.passwords.hash(password) if password is not None else None
    now = core.clock.now()
    with core.store.transaction() as tx:
        existing = tx.accounts.first()
        if existing is not None:
            admins = [u for u in tx.users.in_account(existing.id) if u.super_admin]
            return Bootstrap(False, existing, admins[0].email if admins else "")
        account = Account(id=str(uuid.uuid4()), name=account_name, created=now, modified=now)
        tx.accounts.add(account)
        user = User(
            id=str(uuid.uuid4()),
            account_id=account.id,
            email=email,
            name="Administrator",
            created=now,
            modified=now,
            super_admin=True,
            password_hash=hashed,
        )
        tx.users.add(user)
        link = None if hashed else issue_link(core, tx, user, now, first_time=True)
        audit.record(
            tx,
            now,
            audit.USER_CREATED,
            audit.SUCCESS,
            target=user.id,
            account=account.id,
            via="cli",
        )
    return Bootstrap(True, account, email, link)
