"""The purge's look-up of expired sessions searches indexes on every database,
both for sessions past their expiry and for sessions idle too long (migration
0010): at 1,000,000 sessions a read of the whole table took about 0.1 s of a
CPU each minute, beside the requests being served (bench/analysis.md)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, text

from quatrix_mfa.core.context import Core
from tests.support.storage import NOW, store_of


def _purge_lookup(core: Core) -> tuple[str, Any]:
    """The statement and parameters the session repository's ``expired`` runs."""
    engine = store_of(core).engine
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "sessions" in statement:
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with core.store.transaction(write=False) as tx:
            tx.sessions.expired(NOW, 3600)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(seen) == 1, seen
    return seen[0]


def test_the_purge_finds_expired_and_idle_sessions_through_indexes(core: Core) -> None:
    statement, params = _purge_lookup(core)
    engine = store_of(core).engine
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            # A near-empty table is cheapest to scan: ask whether the indexes can serve.
            conn.execute(text("SET enable_seqscan = off"))
        raw = conn.connection.driver_connection
        assert raw is not None
        cursor = raw.cursor()
        cursor.execute(
            "EXPLAIN " + ("QUERY PLAN " if engine.dialect.name == "sqlite" else "") + statement,
            params,
        )
        plan = "\n".join(" ".join(str(part) for part in row) for row in cursor.fetchall())
        cursor.close()
        conn.rollback()
    assert "ix_sessions_expires_at" in plan, plan
    assert "ix_sessions_last_seen" in plan, plan
    assert "SCAN sessions\n" not in plan + "\n" and "Seq Scan" not in plan, plan
