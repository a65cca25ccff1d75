"""Schema migrations with Alembic, run from code (``serve`` and ``init`` call it)."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from quatrix_mfa.storage.engine import normalize_url

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # '%' is ConfigParser interpolation; escape it in passwords.
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Bring the database to the latest schema (a no-op when it is there)."""
    command.upgrade(alembic_config(url), "head")


@functools.cache
def head_revision() -> str | None:
    """The newest migration shipped with this version (read once)."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def is_current(engine: Engine) -> bool:
    """True if the database is at the newest migration."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() == head_revision()
