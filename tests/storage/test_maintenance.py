"""Purging dead rows in small batches, and writers serialized on a user row."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from quatrix_mfa.core import maintenance
from quatrix_mfa.core.context import Core
from quatrix_mfa.core.model import (
    Account,
    Mail,
    ResetRequest,
    SessionRecord,
    Step,
    TotpEnrollment,
    TrustedDevice,
)
from tests.support.storage import NOW, new_user, wait_for_a_blocked_writer

IDLE = 900.0


def seed_sessions(core: Core, user_id: str) -> None:
    with core.store.transaction() as tx:
        rows = {
            "live-full": SessionRecord("live-full", user_id, NOW, NOW, NOW + 43200),
            "idle-full": SessionRecord("idle-full", user_id, NOW - 2000, NOW - IDLE, NOW + 43200),
            "old-full": SessionRecord("old-full", user_id, NOW - 50000, NOW, NOW - 1),
            "live-pending": SessionRecord(
                "live-pending", user_id, NOW, NOW - IDLE, NOW + 300, (Step.TOTP,)
            ),
            "dead-pending": SessionRecord(
                "dead-pending", user_id, NOW - 400, NOW - 400, NOW - 100, (Step.TOTP,)
            ),
        }
        for record in rows.values():
            tx.sessions.add(record)


def test_purge_removes_only_expired_sessions(core: Core, account: Account) -> None:
    with core.store.transaction() as tx:
        user = new_user(tx, account, "p@example.com")
    seed_sessions(core, user.id)
    purged = maintenance.purge(core, NOW)
    assert purged["sessions"] == 3
    with core.store.transaction(write=False) as tx:
        left = {
            h
            for h in ("live-full", "idle-full", "old-full", "live-pending", "dead-pending")
            if tx.sessions.get(h) is not None
        }
    # A pending session has no idle limit, only its own 5-minute life.
    assert left == {"live-full", "live-pending"}


def test_purge_removes_dead_enrollments_links_counters_and_old_mail(
    core: Core, account: Account
) -> None:
    with core.store.transaction() as tx:
        fresh, stale = (
            new_user(tx, account, "f@example.com"),
            new_user(tx, account, "s@example.com"),
        )
        tx.credentials.put_enrollment(TotpEnrollment(fresh.id, b"x" * 40, "k1", NOW + 60))
        tx.credentials.put_enrollment(TotpEnrollment(stale.id, b"y" * 40, "k1", NOW - 1))
        tx.resets.add(ResetRequest("live", fresh.id, NOW, NOW + 3600))
        tx.resets.add(ResetRequest("expired", fresh.id, NOW - 7200, NOW - 3600))
        tx.resets.add(ResetRequest("used", fresh.id, NOW, NOW + 3600, used_at=NOW))
        for name, expires in (("device-live", NOW + 60), ("device-expired", NOW)):
            tx.devices.add(
                TrustedDevice(name, name, fresh.id, account.id, "l", None, NOW, None, expires, 0, 0)
            )
        for key, updated, blocked in (
            ("recent", NOW - 60, 0.0),
            ("quiet", NOW - 2 * 86400, 0.0),
            ("blocking", NOW - 2 * 86400, NOW + 600),
        ):
            tx.throttle.add_failures([key], updated)
            tx.throttle.block_until(key, blocked)
        for sent_at in (None, NOW - 3600, NOW - 8 * 86400):
            tx.outbox.enqueue(
                Mail(to="a@example.com", subject="s", body="b", created=NOW - 9 * 86400)
            )
    with core.store.transaction() as tx:
        mails = tx.outbox.list()
        tx.outbox.mark_sent(mails[1].id or 0, NOW - 3600)
        tx.outbox.mark_sent(mails[2].id or 0, NOW - 8 * 86400)

    purged = maintenance.purge(core, NOW)

    assert purged == {
        "sessions": 0,
        "enrollments": 1,
        "resets": 2,
        "devices": 1,
        "throttle": 1,
        "outbox": 1,
        "audit": 0,
    }
    with core.store.transaction(write=False) as tx:
        assert tx.credentials.enrollment(fresh.id) is not None
        assert tx.credentials.enrollment(stale.id) is None
        assert tx.resets.get("live") is not None
        assert tx.resets.get("expired") is None and tx.resets.get("used") is None
        assert [d.id for d in tx.devices.of_user(fresh.id)] == ["device-live"]
        assert {s.key for s in tx.throttle.states(["recent", "quiet", "blocking"])} == {
            "recent",
            "blocking",
        }
        assert [m.sent_at for m in tx.outbox.list()] == [None, NOW - 3600]


def test_purge_works_through_a_backlog_in_batches(core: Core, account: Account) -> None:
    with core.store.transaction() as tx:
        user = new_user(tx, account, "b@example.com")
        for n in range(maintenance.BATCH * 2 + 5):
            tx.sessions.add(SessionRecord(f"dead-{n}", user.id, NOW - 400, NOW - 400, NOW - 1))
    assert maintenance.purge(core, NOW)["sessions"] == maintenance.BATCH * 2 + 5
    assert maintenance.purge(core, NOW)["sessions"] == 0


def run_together(*calls: Callable[[], None]) -> None:
    """Each call in its own thread, all started at once; waits for all and
    raises here what any of them raised (an assert in a thread included)."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        for future in [pool.submit(call) for call in calls]:
            future.result(timeout=60)


def test_a_writer_waits_for_another_writer_of_the_same_user(core: Core, account: Account) -> None:
    """Read-modify-write of a user row is never interleaved (no lost update)."""
    with core.store.transaction() as tx:
        user = new_user(tx, account, "w@example.com")
    first_has_read = threading.Event()
    seen_by_second: list[str] = []

    def first() -> None:
        with core.store.transaction() as tx:
            row = tx.users.get(user.id)
            assert row is not None
            first_has_read.set()
            # Hold the row until the second writer is blocked trying to read it.
            wait_for_a_blocked_writer(core.store)
            row.name = "first"
            tx.users.save(row)

    def second() -> None:
        assert first_has_read.wait(30)
        with core.store.transaction() as tx:
            row = tx.users.get(user.id)
            assert row is not None
            seen_by_second.append(row.name)
            row.language = "deu"
            tx.users.save(row)

    run_together(first, second)
    assert seen_by_second == ["first"]
    with core.store.transaction(write=False) as tx:
        final = tx.users.get(user.id)
    assert final is not None and (final.name, final.language) == ("first", "deu")


def test_a_writer_that_locks_a_user_holds_back_other_writers_of_that_user(
    core: Core, account: Account
) -> None:
    """``lock`` without reading: what the second-factor check takes first."""
    with core.store.transaction() as tx:
        user = new_user(tx, account, "l@example.com")
    locked = threading.Event()
    order: list[str] = []

    def first() -> None:
        with core.store.transaction() as tx:
            tx.users.lock(user.id)
            locked.set()
            wait_for_a_blocked_writer(core.store)  # the second writer waits for us
            order.append("first done")

    def second() -> None:
        assert locked.wait(30)
        with core.store.transaction() as tx:
            tx.users.get(user.id)
            order.append("second read")

    run_together(first, second)
    assert order == ["first done", "second read"]
