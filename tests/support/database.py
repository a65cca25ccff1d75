"""The whole database as rows, to prove that a refused request changed nothing."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import select

from quatrix_mfa.core.context import Core
from quatrix_mfa.storage.tables import metadata

# Rows that a refused request may legitimately add: the audit trail of the
# refusal and failure counters. Everything else must stay byte for byte.
VOLATILE_TABLES = {"audit_log", "throttle"}


class HasCore(Protocol):
    """The HTTP ``Api`` or a driver: anything that runs on a core."""

    @property
    def core(self) -> Core: ...


def snapshot(source: HasCore) -> dict[str, list[tuple[Any, ...]]]:
    """Every table but the volatile ones, rows sorted, as stored."""
    engine = source.core.store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return {
            table.name: sorted((tuple(row) for row in conn.execute(select(table))), key=repr)
            for table in metadata.sorted_tables
            if table.name not in VOLATILE_TABLES
        }
