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
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import Executable

Processor = Callable[[Any], Any] | None
_Conversions = tuple[tuple[int, Processor], ...]


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

    Rows come back as plain tuples in the statement's column order, with the
    column types' result processing applied (booleans on SQLite, JSON, ...).
    ``before_cursor_execute`` listeners on the engine still see every
    statement, so statement counters and tracing keep working.
    """

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, frozenset[str]], Compiled] = {}
        # Result processors, made once from the first cursor's description:
        # some need the driver's type code of the column (psycopg numerics).
        self._results: dict[tuple[str, frozenset[str]], _Conversions | None] = {}
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

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        names = frozenset(params)
        compiled = self.compiled(conn.dialect, names)
        cursor = self._run(conn, compiled, params)
        try:
            fetched = cursor.fetchall()
            key = (conn.dialect.name, names)
            if key not in self._results:
                self._results[key] = _result_processors(compiled, conn.dialect, cursor)
            results = self._results[key]
        finally:
            cursor.close()
        if results is None:
            return [tuple(row) for row in fetched]
        return [_convert(row, results) for row in fetched]

    def first(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        found = self.rows(conn, params)
        return found[0] if found else None

    def rowcount(self, conn: Connection, params: Mapping[str, Any]) -> int:
        cursor = self.execute(conn, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()


def _convert(row: Sequence[Any], results: _Conversions) -> tuple[Any, ...]:
    values = list(row)
    for index, process in results:
        if values[index] is not None:
            values[index] = process(values[index])  # type: ignore[misc]
    return tuple(values)


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


def _result_processors(compiled: Compiled, dialect: Dialect, cursor: Any) -> _Conversions | None:
    """The result columns that need converting, with their processors (None: none does)."""
    codes = [entry[1] for entry in cursor.description or ()]
    if len(codes) != len(compiled.columns):
        raise ValueError("the driver returned other columns than the statement selects")
    processors = tuple(
        (index, column.type.dialect_impl(dialect).result_processor(dialect, code))
        for index, (column, code) in enumerate(zip(compiled.columns, codes, strict=True))
    )
    return tuple(p for p in processors if p[1] is not None) or None
