"""Store.single_statement_read: the session check's one read, on every database.

On SQLite's event-loop reader, and on PostgreSQL in autocommit, it runs without
BEGIN and COMMIT; it must still see exactly what a transaction sees, and see a
change committed elsewhere at once (a session closed on one node is refused at
once on every node)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from typing import TypeVar

import psycopg

from quatrix_mfa.core.context import Core
from quatrix_mfa.core.model import Account, SessionRecord, User
from quatrix_mfa.core.ports import Transaction
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
        single = core.store.single_statement_read(lambda tx: tx.sessions.get_with_owner(HASH))
        missing = core.store.single_statement_read(lambda tx: tx.sessions.get_with_owner("d" * 64))
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
        found = core.store.single_statement_read(lambda tx: tx.sessions.get_with_owner(HASH))
        return found is not None

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


def _driver_in_transaction(tx: object) -> bool:
    """Whether the driver's own connection is inside a transaction now: what
    the database was sent, not SQLAlchemy's bookkeeping."""
    raw = tx.conn.connection.driver_connection  # type: ignore[attr-defined]
    if isinstance(raw, sqlite3.Connection):
        return raw.in_transaction
    return bool(raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)


def test_one_statement_goes_without_begin_and_commit(core: Core, account: Account) -> None:
    """SQLite's loop reader and PostgreSQL's autocommit read: the one statement
    alone, where a read-only transaction sends BEGIN first."""
    _add_session(core, account)
    store = store_of(core)

    def open_transactions() -> tuple[bool, bool, bool, object]:
        def read(tx: Transaction) -> tuple[object, bool, object]:
            raw = tx.conn.connection.driver_connection  # type: ignore[attr-defined]
            return tx.sessions.get_with_owner(HASH), _driver_in_transaction(tx), raw

        found, single, raw = core.store.single_statement_read(read)
        with core.store.transaction(write=False) as tx:
            tx.sessions.get_with_owner(HASH)
            whole = _driver_in_transaction(tx)
        return found is not None, single, whole, raw

    found, single, whole, raw = _on_the_loop(store, open_transactions)
    assert found
    assert whole is True
    assert single is False
    if isinstance(raw, psycopg.Connection):
        # Back in the pool, the connection is out of autocommit again: the
        # next unit of work on it is a transaction, all or nothing.
        assert raw.autocommit is False
