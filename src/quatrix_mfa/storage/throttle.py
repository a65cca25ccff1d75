"""Throttle counters: failures per key (a hashed email, a client address),
changed only by atomic upserts so that every process counts every failure."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, select, update
from sqlalchemy.dialects import postgresql, sqlite

from quatrix_mfa.core.model import ThrottleState
from quatrix_mfa.storage.prepared import Prepared
from quatrix_mfa.storage.rows import RecordReader, delete_some
from quatrix_mfa.storage.tables import throttle

_STATE = RecordReader(ThrottleState, throttle)

# The states of one key, or of a user key and an address key: plain
# parameters, not an expanding IN, which SQLAlchemy rewrites on every execution.
_THROTTLE_STATES = {
    count: Prepared(
        select(throttle).where(throttle.c.key.in_([bindparam(f"b_key_{i}") for i in range(count)]))
    )
    for count in (1, 2)
}
_CLEAR_THROTTLE = Prepared(
    update(throttle)
    .where(throttle.c.key == bindparam("b_key"))
    .values(failures=0, blocked_until=0.0)
)


@dataclass(frozen=True)
class _ThrottleStatements:
    """The throttle's upserts, built once per dialect (``ON CONFLICT`` differs)."""

    add_failures: dict[int, Prepared]  # by the number of keys counted at once
    attempt: Prepared

    @classmethod
    @functools.cache
    def of(cls, dialect: str) -> _ThrottleStatements:
        insert_of = postgresql.insert if dialect == "postgresql" else sqlite.insert
        now = bindparam("b_now", type_=throttle.c.updated.type)

        def fresh(count: int) -> Any:
            fields = {"failures": 1, "blocked_until": 0.0, "updated": now}
            rows = [{"key": bindparam(f"b_key_{i}"), **fields} for i in range(count)]
            return insert_of(throttle).values(rows)

        # One upsert with RETURNING: concurrent failures each see their own
        # count. A user key and an address key in one statement (a wrong
        # code counts against both): one round trip instead of two.
        add_failures = {
            count: Prepared(
                fresh(count)
                .on_conflict_do_update(
                    index_elements=[throttle.c.key],
                    set_={"failures": throttle.c.failures + 1, "updated": now},
                )
                .returning(throttle.c.key, throttle.c.failures)
            )
            for count in (1, 2)
        }
        # The same, but a blocked key is left as it is (the attempt is refused).
        blocked = throttle.c.blocked_until > now
        attempt = (
            fresh(1)
            .on_conflict_do_update(
                index_elements=[throttle.c.key],
                set_={
                    "failures": case((blocked, throttle.c.failures), else_=throttle.c.failures + 1),
                    "updated": case((blocked, throttle.c.updated), else_=now),
                },
            )
            .returning(throttle.c.failures, throttle.c.blocked_until, throttle.c.updated)
        )
        return cls(add_failures, Prepared(attempt))


_BEFORE = bindparam("b_before", type_=throttle.c.blocked_until.type)
_UNTIL = bindparam("b_until", type_=throttle.c.blocked_until.type)
_TAKE_BACK = Prepared(
    update(throttle)
    .where(throttle.c.key == bindparam("b_key"))
    .values(
        failures=case((throttle.c.failures > 0, throttle.c.failures - 1), else_=0),
        blocked_until=case(
            (throttle.c.blocked_until == bindparam("b_blocked_until"), _BEFORE),
            else_=throttle.c.blocked_until,
        ),
    )
)
_BLOCK_UNTIL = Prepared(
    update(throttle)
    .where(throttle.c.key == bindparam("b_key"))
    .values(
        blocked_until=case(
            (throttle.c.blocked_until < _UNTIL, _UNTIL),
            else_=throttle.c.blocked_until,
        )
    )
)


class SqlThrottleRepository:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn = conn
        self.statements = _ThrottleStatements.of(dialect)

    def states(self, keys: Sequence[str]) -> list[ThrottleState]:
        prepared = _THROTTLE_STATES.get(len(keys))
        if prepared is not None:
            params = {f"b_key_{i}": key for i, key in enumerate(keys)}
            return [_STATE(row) for row in prepared.rows(self.conn, params)]
        query = select(throttle).where(throttle.c.key.in_(list(keys)))
        return [_STATE(row) for row in self.conn.execute(query)]

    def add_failures(self, keys: Sequence[str], now: float) -> list[int]:
        if len(set(keys)) != len(keys):
            raise ValueError("each key is counted once")  # ON CONFLICT touches a row once
        prepared = self.statements.add_failures.get(len(keys))
        if prepared is None:  # more keys at once than any caller counts
            return [count for key in keys for count in self.add_failures([key], now)]
        params: dict[str, Any] = {f"b_key_{i}": key for i, key in enumerate(keys)}
        params["b_now"] = now
        # RETURNING's rows come in no promised order: matched by key.
        counts = {row.key: int(row.failures) for row in prepared.rows(self.conn, params)}
        return [counts[key] for key in keys]

    def attempt(self, key: str, now: float) -> ThrottleState:
        # PostgreSQL holds the upserted row's lock until commit, so racing
        # attempts queue here and each sees the count and block before it.
        params = {"b_key_0": key, "b_now": now}
        row = self.statements.attempt.rows(self.conn, params)[0]
        return ThrottleState(key, row.failures, row.blocked_until, row.updated)

    def take_back(self, key: str, blocked_until: float, before: float) -> None:
        params = {"b_key": key, "b_blocked_until": blocked_until, "b_before": before}
        _TAKE_BACK.rowcount(self.conn, params)

    def block_until(self, key: str, until: float) -> None:
        _BLOCK_UNTIL.rowcount(self.conn, {"b_key": key, "b_until": until})

    def clear(self, key: str) -> None:
        # Reset, not delete: on PostgreSQL a delete racing the upserts of
        # ``attempt`` (insert, conflict, update) can deadlock; purge_idle
        # removes the row once it has been quiet long enough.
        _CLEAR_THROTTLE.rowcount(self.conn, {"b_key": key})

    def purge_idle(self, before: float, now: float, limit: int) -> int:
        idle = and_(throttle.c.updated < before, throttle.c.blocked_until <= now)
        return delete_some(self.conn, throttle, throttle.c.key, idle, limit)
