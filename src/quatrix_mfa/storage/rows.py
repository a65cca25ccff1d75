"""What the repositories share: records read from rows by column name, and
work on many rows in bounded pieces."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from typing import Any, Generic, TypeVar

from sqlalchemy import Column, Connection, Table, delete, select

from quatrix_mfa.core.model import Account, SessionRecord, Step, User
from quatrix_mfa.storage.tables import accounts, sessions, users

R = TypeVar("R")

CHUNK = 500


def chunks(items: Sequence[str]) -> list[Sequence[str]]:
    """``items`` in pieces of ``CHUNK``: one ``IN`` list stays within every
    database's limit on bound parameters."""
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


def delete_some(
    conn: Connection, table: Table, key: Column[Any], condition: Any, limit: int
) -> int:
    """Delete at most ``limit`` rows matching ``condition``: purges stay short
    transactions with short locks, however much there is to purge."""
    some = select(key).where(condition).limit(limit)
    return int(conn.execute(delete(table).where(key.in_(some))).rowcount)


class RecordReader(Generic[R]):
    """Makes a record (a core dataclass) from a row, each field from the column
    of its name, never from a position.

    Works on any row with columns as attributes: a :class:`~.prepared.Row` or
    SQLAlchemy's own. ``prefix`` names the columns of one table in a joined
    select labelled ``table_column``; ``renamed`` maps a field to a column of
    another name; ``convert`` turns a column's value into the field's. The
    column names are checked against ``table`` once, here, and read with one
    ``attrgetter`` per row: as cheap as reading by position.
    """

    def __init__(
        self,
        record: type[R],
        table: Table,
        prefix: str = "",
        renamed: Mapping[str, str] | None = None,
        convert: Mapping[str, Callable[[Any], Any]] | None = None,
    ) -> None:
        fields = [f.name for f in dataclasses.fields(record)]  # type: ignore[arg-type]
        columns = [(renamed or {}).get(name, name) for name in fields]
        missing = [name for name in columns if name not in table.c]
        if missing:
            raise ValueError(f"{record.__name__}: no column {missing} in {table.name}")
        self.record = record
        self.columns = tuple(prefix + name for name in columns)
        self._values = attrgetter(*self.columns)
        self._convert = tuple((fields.index(name), fn) for name, fn in (convert or {}).items())

    def __call__(self, row: Any) -> R:
        if not self._convert:
            return self.record(*self._values(row))
        values = list(self._values(row))
        for index, convert in self._convert:
            values[index] = convert(values[index])
        return self.record(*values)


def _steps(stored: str) -> tuple[Step, ...]:
    return tuple(Step(s) for s in stored.split(",") if s)


def account_reader(prefix: str = "") -> RecordReader[Account]:
    # Fresh containers: the caller may change the account and save it.
    return RecordReader(Account, accounts, prefix, convert={"ip_whitelist": list, "settings": dict})


def user_reader(prefix: str = "") -> RecordReader[User]:
    return RecordReader(User, users, prefix)


def session_reader(prefix: str = "") -> RecordReader[SessionRecord]:
    return RecordReader(SessionRecord, sessions, prefix, convert={"steps": _steps})
