"""Rows and locks for the storage suite (tests/storage/): a fixed time, an
account and users written straight through a transaction, and the writer
locks two transactions can meet on."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from sqlalchemy import text

from quatrix_mfa.core.context import Core
from quatrix_mfa.core.model import Account, User
from quatrix_mfa.core.ports import Store, Transaction
from quatrix_mfa.storage.store import SqlStore

NOW = 1_800_000_000.0


class Boom(Exception):
    """Raised inside a transaction to show that it leaves nothing behind."""


def new_account(tx: Transaction) -> Account:
    account = Account(id=str(uuid.uuid4()), name="Acme", created=NOW, modified=NOW)
    tx.accounts.add(account)
    return account


def new_user(tx: Transaction, account: Account, email: str) -> User:
    user = User(
        id=str(uuid.uuid4()),
        account_id=account.id,
        email=email,
        name=email.split("@")[0],
        created=NOW,
        modified=NOW,
    )
    tx.users.add(user)
    return user


def store_of(core: Core) -> SqlStore:
    """The real store behind ``core`` (tests that look under the port)."""
    assert isinstance(core.store, SqlStore)
    return core.store


@contextmanager
def another_thread_writing(store: SqlStore) -> Iterator[None]:
    """A write transaction open in another thread for as long as this is
    entered; an error in that thread fails the test."""
    holding, done = threading.Event(), threading.Event()

    def writer() -> None:
        with store.transaction():
            holding.set()
            assert done.wait(timeout=30)

    with ThreadPoolExecutor(max_workers=1) as pool:
        writing = pool.submit(writer)
        try:
            assert holding.wait(timeout=10)
            yield
        finally:
            done.set()
        writing.result(timeout=10)


def blocked_writers(store: Store) -> int:
    """Writers of ``store`` blocked right now: queued for SQLite's writer lock
    (this process), or waiting for a lock in PostgreSQL (this database)."""
    assert isinstance(store, SqlStore)
    if store.is_sqlite:
        return store._writer.waiting
    query = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with store.engine.connect() as conn:
        return int(conn.execute(text(query)).scalar_one())


def wait_for_a_blocked_writer(store: Store, timeout: float = 30.0) -> None:
    """Return once another writer waits for a lock (one this thread may hold)."""
    deadline = time.monotonic() + timeout
    while blocked_writers(store) == 0:
        assert time.monotonic() < deadline, f"no writer blocked within {timeout} s"
        time.sleep(0.002)  # polls a condition; the test does not rely on its length
