"""``init``: the one command that makes keys, for a new database only."""

from __future__ import annotations

import sys
import time

from sqlalchemy import Engine, func, inspect, select

from quatrix_mfa.settings import Settings


def initialise(settings: Settings, email: str, account_name: str, password: str | None) -> int:
    """Create the data folder (0700), database (0600), key file (0600) and the
    first account; on an initialised deployment, check it and change nothing."""
    from quatrix_mfa.core import passwords
    from quatrix_mfa.core.admin import parse_email
    from quatrix_mfa.core.errors import QuatrixError
    from quatrix_mfa.keys import create_key_file
    from quatrix_mfa.startup import StartupError, connect, ensure_schema, prepare_data_dir
    from quatrix_mfa.storage.deployment import verify_or_adopt

    try:  # bad input is refused before anything is written
        email = parse_email(email)
        if password is not None:
            passwords.check_strength(password, email)
    except QuatrixError as error:
        print(f"error: {error.msg}", file=sys.stderr)
        return 2
    url = settings.effective_database_url
    prepare_data_dir(settings, create=True)
    engine = connect(url, 0)
    try:
        if not settings.key_file.exists() and in_use(engine):
            raise StartupError(
                f"key file {settings.key_file} is missing and the database already has "
                f"users: restore the key file from the backup made with the database "
                f"(init makes keys only for a new database)"
            )
        ensure_schema(engine, url, upgrade=True)
        create_key_file(settings.key_file)
        verify_or_adopt(settings.key_file, engine, time.time())
    finally:
        engine.dispose()
    return first_admin(settings, email, account_name, password)


def in_use(engine: Engine) -> bool:
    """Whether the database has users or registered keys: not new any more."""
    from quatrix_mfa.storage.tables import key_checks, users

    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        for table in (users, key_checks):
            if (
                table.name in tables
                and conn.execute(select(func.count()).select_from(table)).scalar()
            ):
                return True
    return False


def first_admin(settings: Settings, email: str, account_name: str, password: str | None) -> int:
    """Create the account and its administrator unless there is one; without
    a password, print the one-time link that sets it."""
    from quatrix_mfa.api.app import build_core
    from quatrix_mfa.core.bootstrap import bootstrap
    from quatrix_mfa.core.errors import QuatrixError

    core = build_core(settings)
    try:
        result = bootstrap(core, email, account_name, password)
    except QuatrixError as error:
        print(f"error: {error.msg}", file=sys.stderr)
        return 2
    finally:
        core.store.dispose()  # type: ignore[attr-defined]
    if not result.created:
        print(
            f"Already initialised: account {result.account.name!r}, "
            f"admin {result.admin_email}. Nothing changed."
        )
        return 0
    print(f"Created account {result.account.name!r} with administrator {result.admin_email}.")
    if result.link:
        print("Set the administrator's password with this one-time link (valid 7 days):")
        print(f"  {result.link}")
    return 0
