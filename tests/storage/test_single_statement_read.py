"""Store.single_statement_read: the session check's one read, on every database.

On SQLite's event-loop reader it runs without BEGIN and COMMIT; it must still
see exactly what a transaction sees, and see a change committed elsewhere at
once (a session closed on one node is refused at once on every node)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

from quatrix_mfa.core.context import Core
from quatrix_mfa.core.model import Account, SessionRecord, User
from quatrix_mfa.storage.store import SqlStore
from tests.support.storage import NOW, new_user, store_of

T = TypeVar("T")
HASH = "c" * 64


def _on_the_loop(store: SqlStore, work: Callable[[], T]) -> T:
    """``work`` as the session check runs it: a short read through ``Store.run``."""

    async def main() -> T:
        return await store.run(work, write=False)

    return asyncio.run(main())


def _add_session(core: Core, account: Account) -> User:
    with core.store.transaction() as tx:
        user = new_user(tx, account, "reader@example.com")
        tx.sessions.add(SessionRecord(HASH, user.id, NOW, NOW, NOW + 3600))
    return user


def test_a_single_statement_read_finds_what_a_transaction_finds(
    core: Core, account: Account
) -> None:
    _add_session(core, account)

    def both() -> tuple[object, object, object]:
        with core.store.transaction(write=False) as tx:
            in_transaction = tx.sessions.get_with_owner(HASH)
        with core.store.single_statement_read() as tx:
            single = tx.sessions.get_with_owner(HASH)
            missing = tx.sessions.get_with_owner("d" * 64)
        return in_transaction, single, missing

    in_transaction, single, missing = _on_the_loop(store_of(core), both)
    assert single is not None and single == in_transaction
    assert missing is None


def test_a_session_closed_elsewhere_is_gone_for_the_next_single_read(
    core: Core, account: Account
) -> None:
    _add_session(core, account)
    store = store_of(core)

    def read() -> bool:
        with core.store.single_statement_read() as tx:
            return tx.sessions.get_with_owner(HASH) is not None

    def close_on_another_thread() -> None:
        def close() -> None:
            with core.store.transaction() as tx:
                assert tx.sessions.delete(HASH)

        thread = threading.Thread(target=close)
        thread.start()
        thread.join()

    async def main() -> tuple[bool, bool]:
        before = await store.run(read, write=False)
        close_on_another_thread()  # another connection, as another node would
        return before, await store.run(read, write=False)

    assert asyncio.run(main()) == (True, False)


def test_the_loop_reader_opens_no_transaction_for_one_statement(
    core: Core, account: Account, db_kind: str
) -> None:
    _add_session(core, account)
    store = store_of(core)

    def open_transactions() -> tuple[bool, bool]:
        with core.store.single_statement_read() as tx:
            tx.sessions.get_with_owner(HASH)
            single = tx.conn.in_transaction()  # type: ignore[attr-defined]
        with core.store.transaction(write=False) as tx:
            tx.sessions.get_with_owner(HASH)
            whole = tx.conn.in_transaction()  # type: ignore[attr-defined]
        return single, whole

    single, whole = _on_the_loop(store, open_transactions)
    assert whole is True
    # SQLite reads one statement from one snapshot: no BEGIN/COMMIT around it.
    # Elsewhere (PostgreSQL, in the thread pool) it is a read-only transaction.
    assert single is (db_kind != "sqlite")
