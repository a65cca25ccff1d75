"""SqlStore.run: short work on the event loop only where it cannot wait
(SQLite: a read, or a write while the writer lock is free), everything else
in the thread pool (slow work, a busy writer lock, PostgreSQL)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from quatrix_mfa.core.context import Core
from quatrix_mfa.storage.store import SqlStore
from tests.support.storage import another_thread_writing, store_of


def _where(loop_thread: int) -> str:
    """Where the calling work runs: "loop" (the event loop's own thread) or "pool"."""
    return "loop" if threading.get_ident() == loop_thread else "pool"


def _thread_of(store: SqlStore, *, slow: bool = False, write: bool = True) -> str:
    """Where the work ran: "loop" (the event loop's own thread) or "pool"."""

    async def main() -> str:
        loop_thread = threading.get_ident()

        def work() -> str:
            with store.transaction(write=write) as tx:  # a real unit of work
                tx.throttle.states(["k"])
            return _where(loop_thread)

        return await store.run(work, slow=slow, write=write)

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("slow", "write", "on_sqlite"),
    [(False, True, "loop"), (False, False, "loop"), (True, True, "pool"), (True, False, "pool")],
)
def test_work_runs_where_the_database_lets_it(
    core: Core, db_kind: str, slow: bool, write: bool, on_sqlite: str
) -> None:
    expected = on_sqlite if db_kind == "sqlite" else "pool"
    assert _thread_of(store_of(core), slow=slow, write=write) == expected


def test_a_short_write_goes_to_the_pool_while_another_thread_writes(core: Core) -> None:
    store = store_of(core)
    with another_thread_writing(store):

        async def main() -> tuple[str, str]:
            loop_thread = threading.get_ident()

            def write() -> str:  # no transaction: the other writer holds the lock until told
                return _where(loop_thread)

            def read() -> str:
                with store.transaction(write=False) as tx:
                    tx.throttle.states(["k"])
                return _where(loop_thread)

            return await store.run(write), await store.run(read, write=False)

        wrote, read = asyncio.run(main())
        assert wrote == "pool"
        # A read never waits for a writer, so it still runs on the loop (SQLite).
        assert read == ("loop" if store.is_sqlite else "pool")
