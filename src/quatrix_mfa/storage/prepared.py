"""Hot-path statements run on the driver's own cursor.

SQLAlchemy's work around each execution (an execution context, event
dispatch, parameter and result processing, a result object) costs 10-20 µs
per statement: several times what SQLite itself needs for the one-row
statements of a second-factor check, which runs eight of them
(bench/analysis.md). A :class:`Prepared` statement keeps the Core statement
as its one definition. SQLAlchemy compiles it once per dialect and set of
parameter names; what that compilation yields (the SQL text, the order of its
parameters, the type processors of its binds and result columns) is kept, and
each execution is then one driver call inside the caller's transaction.

Only plain statements qualify: no expanding ``IN`` and no Python-side column
defaults (both need SQLAlchemy at execution time); :meth:`Prepared.compiled`
refuses them when it first compiles.

Rows are read by column name, never by position: each row is a tuple whose
columns are also attributes, named as the driver's cursor names them (a
joined select labels them ``table_column``). The row's type is made once per
statement from the first cursor's description, so naming costs nothing per
row, and a column added to or moved in a statement cannot shift its
neighbours' values into the wrong fields.
"""

from __future__ import annotations

import functools
import threading
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import Executable

Processor = Callable[[Any], Any] | None
_Conversions = tuple[tuple[int, Processor], ...]


class Row(Protocol):
    """A result row: a tuple whose columns are also attributes by column name."""

    def __getattr__(self, name: str) -> Any: ...
    def __getitem__(self, index: int) -> Any: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __len__(self) -> int: ...


# What the rows of one statement look like, learnt from its first cursor: how
# to make one (a tuple of the statement's named row type), and the columns
# whose values need converting. A plain tuple: read on every execution.
_Shape = tuple[Callable[[Iterable[Any]], Row], _Conversions | None]


@dataclass(frozen=True)
class Compiled:
    """One statement as the driver takes it, for one dialect and set of parameters."""

    sql: str
    names: tuple[str, ...]  # bind names, in the driver's order
    positional: bool  # qmark (SQLite) takes a tuple, pyformat (psycopg) a dict
    binds: tuple[tuple[str, Processor], ...]  # only the binds that need processing
    fixed: tuple[tuple[str, Any], ...]  # values written into the statement (``values(n=1)``)
    columns: tuple[Any, ...]  # the result columns (their types convert what the driver returns)


class Prepared:
    """A Core statement executed without SQLAlchemy's per-execution machinery.

    Rows come back as named tuples (:class:`Row`), read by column name, with
    the column types' result processing applied (booleans on SQLite, JSON, ...).
    ``before_cursor_execute`` listeners on the engine still see every
    statement, so statement counters and tracing keep working.
    """

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, frozenset[str]], Compiled] = {}
        # Row type and result processors, made once from the first cursor's
        # description: some processors need the driver's type code of the
        # column (psycopg numerics).
        self._shapes: dict[tuple[str, frozenset[str]], _Shape] = {}
        self._lock = threading.Lock()

    def compiled(self, dialect: Dialect, names: frozenset[str]) -> Compiled:
        key = (dialect.name, names)
        found = self._compiled.get(key)
        if found is None:
            with self._lock:
                found = self._compiled.setdefault(key, _compile(self.statement, dialect, names))
        return found

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """Run on ``conn``'s driver connection (in its transaction); the DB-API cursor."""
        return self._run(conn, self.compiled(conn.dialect, frozenset(params)), params)

    def _run(self, conn: Connection, compiled: Compiled, params: Mapping[str, Any]) -> Any:
        values = dict(params)
        values.update(compiled.fixed)
        for name, process in compiled.binds:
            values[name] = process(values[name])  # type: ignore[misc]
        bound: Sequence[Any] | Mapping[str, Any] = (
            tuple(values[name] for name in compiled.names) if compiled.positional else values
        )
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        # The engine's listeners (the connection's joined view of them costs
        # more to look up than the statement itself takes to run).
        listeners = conn.engine.dispatch.before_cursor_execute
        if listeners:
            for listener in listeners:
                listener(conn, cursor, compiled.sql, bound, None, False)
        cursor.execute(compiled.sql, bound)
        return cursor

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[Row]:
        names = frozenset(params)
        compiled = self.compiled(conn.dialect, names)
        cursor = self._run(conn, compiled, params)
        try:
            fetched = cursor.fetchall()
            key = (conn.dialect.name, names)
            shape = self._shapes.get(key)
            if shape is None:
                shape = self._shapes.setdefault(key, _shape(compiled, conn.dialect, cursor))
        finally:
            cursor.close()
        make, conversions = shape
        if conversions is None:
            return [make(row) for row in fetched]
        return [make(_convert(row, conversions)) for row in fetched]

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Row | None:
        found = self.rows(conn, params)
        return found[0] if found else None

    def rowcount(self, conn: Connection, params: Mapping[str, Any]) -> int:
        cursor = self.execute(conn, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()


def _convert(row: Sequence[Any], results: _Conversions) -> list[Any]:
    values = list(row)
    for index, process in results:
        if values[index] is not None:
            values[index] = process(values[index])  # type: ignore[misc]
    return values


def _compile(statement: Executable, dialect: Dialect, names: frozenset[str]) -> Compiled:
    compiler = statement.compile(dialect=dialect, column_keys=sorted(names))  # type: ignore[attr-defined]
    assert isinstance(compiler, SQLCompiler)
    if compiler.literal_execute_params or compiler.post_compile_params:
        raise ValueError("an expanding or literal-execute parameter needs SQLAlchemy")
    if compiler.insert_prefetch or compiler.update_prefetch:
        raise ValueError("a Python-side column default needs SQLAlchemy")
    positional = bool(compiler.positional)
    order = tuple(compiler.positiontup or ()) if positional else tuple(compiler.binds)
    binds = []
    fixed = {}
    for name in order:
        bind = compiler.binds[name]
        if name not in names:
            if bind.required:
                raise ValueError(f"parameter {name!r} not given")
            fixed[name] = bind.effective_value
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            binds.append((name, process))
    return Compiled(
        sql=compiler.string,
        names=order,
        positional=positional,
        binds=tuple(dict(binds).items()),
        fixed=tuple(fixed.items()),
        columns=tuple(getattr(statement, "exported_columns", ())),
    )


def _shape(compiled: Compiled, dialect: Dialect, cursor: Any) -> _Shape:
    """The row type named by the cursor's column names, and the result columns
    that need converting with their processors (None: none does)."""
    description = cursor.description or ()
    if len(description) != len(compiled.columns):
        raise ValueError("the driver returned other columns than the statement selects")
    names = [entry[0] for entry in description]
    try:
        row_type = namedtuple("Row", names)  # type: ignore[misc]
    except ValueError as error:  # a name twice (select two tables unlabelled), or no identifier
        raise ValueError(
            f"rows are read by column name, so the names must be unique identifiers: {names}"
        ) from error
    processors = tuple(
        (index, column.type.dialect_impl(dialect).result_processor(dialect, entry[1]))
        for index, (column, entry) in enumerate(zip(compiled.columns, description, strict=True))
    )
    conversions = tuple(p for p in processors if p[1] is not None) or None
    make = cast(Callable[[Iterable[Any]], Row], functools.partial(tuple.__new__, row_type))
    return make, conversions
