"""What the repositories share: records read from rows by column name, and
work on many rows in bounded pieces."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from typing import Any, Generic, TypeVar

from sqlalchemy import Column, Connection, String, Table, delete, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from quatrix_mfa.core.model import Account, SessionKind, SessionRecord, Step, User
from quatrix_mfa.storage.tables import accounts, credentials, sessions, users

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
        computed: Sequence[str] = (),
    ) -> None:
        fields = [f.name for f in dataclasses.fields(record)]  # type: ignore[arg-type]
        columns = [(renamed or {}).get(name, name) for name in fields]
        missing = [name for name in columns if name not in table.c and name not in computed]
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


def _kinds(stored: str | None) -> frozenset[str]:
    return frozenset(stored.split(",")) if stored else frozenset()


class _CommaJoined(FunctionElement[str]):
    """``group_concat(x, ',')`` on SQLite, ``string_agg(x, ',')`` on PostgreSQL,
    with the comma in the SQL text: SQLAlchemy's own ``aggregate_strings`` binds
    it as a literal-execute parameter, which a prepared statement cannot take."""

    type = String()
    inherit_cache = True
    name = "comma_joined"


@compiles(_CommaJoined, "sqlite")
def _group_concat(element: _CommaJoined, compiler: Any, **kw: Any) -> str:
    return f"group_concat({compiler.process(element.clauses, **kw)}, ',')"


@compiles(_CommaJoined, "postgresql")
def _string_agg(element: _CommaJoined, compiler: Any, **kw: Any) -> str:
    return f"string_agg({compiler.process(element.clauses, **kw)}, ',')"


def enrolled_kinds(user_id: Any) -> Any:
    """The column ``enrolled`` of a user select: the kinds of credentials the
    user holds, as one comma-separated string (one indexed look-up)."""
    return (
        select(_CommaJoined(credentials.c.kind))
        .where(credentials.c.user_id == user_id)
        .scalar_subquery()
    )


def user_reader(prefix: str = "") -> RecordReader[User]:
    """Reads a user from a select of ``users`` plus :func:`enrolled_kinds`
    labelled ``<prefix>enrolled``."""
    return RecordReader(User, users, prefix, convert={"enrolled": _kinds}, computed=("enrolled",))


def _factors(stored: str) -> tuple[str, ...]:
    return tuple(stored.split(",")) if stored else ()


def session_reader(prefix: str = "") -> RecordReader[SessionRecord]:
    return RecordReader(
        SessionRecord,
        sessions,
        prefix,
        convert={"steps": _steps, "kind": SessionKind, "factors": _factors},
    )
