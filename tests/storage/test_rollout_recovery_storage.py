"""The storage promises of issue 12 over the real store (SQLite, PostgreSQL):
a 2FA deadline's stage is claimed by exactly one of racing writers, a
recovery closes for exactly one, and a user has at most one open recovery."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy.exc import IntegrityError

from quatrix_mfa.core.context import Core
from quatrix_mfa.core.model import Account, MfaRecovery, RecoveryState
from tests.support.storage import NOW, new_user

THREADS = 8
DEADLINE = NOW + 86400


def _race(work: object) -> list[bool]:
    start = threading.Barrier(THREADS)

    def run(_: int) -> bool:
        start.wait(timeout=30)
        return work()  # type: ignore[operator,no-any-return]

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(run, range(THREADS)))


def _with_deadline(core: Core, account: Account) -> None:
    account.force_2fa = True
    account.mfa_enroll_by = DEADLINE
    with core.store.transaction() as tx:
        tx.accounts.save(account)


def test_a_stage_is_claimed_once_among_racing_writers(core: Core, account: Account) -> None:
    _with_deadline(core, account)

    def claim() -> bool:
        with core.store.transaction() as tx:
            return tx.accounts.claim_mfa_stage(account.id, DEADLINE, 1)

    assert sorted(_race(claim)) == [False] * (THREADS - 1) + [True]
    with core.store.transaction(write=False) as tx:
        stored = tx.accounts.get(account.id)
        assert [a.id for a in tx.accounts.in_mfa_rollout()] == [account.id]
    assert stored is not None and stored.mfa_stage == 1


def test_a_claim_for_another_deadline_misses_and_save_keeps_the_stage(
    core: Core, account: Account
) -> None:
    _with_deadline(core, account)
    with core.store.transaction() as tx:
        assert not tx.accounts.claim_mfa_stage(account.id, DEADLINE + 1, 1)
        assert tx.accounts.claim_mfa_stage(account.id, DEADLINE, 4)
        account.mfa_stage = 0  # a stale copy written back does not move it
        tx.accounts.save(account)
        stored = tx.accounts.get(account.id)
        assert stored is not None and stored.mfa_stage == 4
        assert tx.accounts.in_mfa_rollout() == []  # done
        tx.accounts.restart_mfa_stage(account.id)
        assert [a.id for a in tx.accounts.in_mfa_rollout()] == [account.id]


def test_a_recovery_closes_for_one_caller_only(core: Core, account: Account) -> None:
    with core.store.transaction() as tx:
        user = new_user(tx, account, "alice@example.com")
        tx.recoveries.add(MfaRecovery("h" * 64, user.id, account.id, NOW, NOW + 10))

    def close() -> bool:
        with core.store.transaction() as tx:
            return tx.recoveries.close("h" * 64, RecoveryState.CANCELLED, NOW)

    assert sorted(_race(close)) == [False] * (THREADS - 1) + [True]
    with core.store.transaction(write=False) as tx:
        assert tx.recoveries.open_for_user(user.id) is None
        closed = tx.recoveries.get("h" * 64)
    assert closed is not None and closed.state is RecoveryState.CANCELLED


def test_a_user_has_at_most_one_open_recovery(core: Core, account: Account) -> None:
    with core.store.transaction() as tx:
        user = new_user(tx, account, "alice@example.com")
        tx.recoveries.add(MfaRecovery("a" * 64, user.id, account.id, NOW, NOW + 10))
    with pytest.raises(IntegrityError), core.store.transaction() as tx:
        tx.recoveries.add(MfaRecovery("b" * 64, user.id, account.id, NOW, NOW + 10))
    with core.store.transaction() as tx:
        assert tx.recoveries.approve("a" * 64, "admin", NOW + 1)
        # Approved once: a second approval wins nothing and changes nothing.
        assert not tx.recoveries.approve("a" * 64, "other", NOW + 2)
        approved = tx.recoveries.get("a" * 64)
        assert approved is not None
        assert (approved.approved_by, approved.ready_at) == ("admin", NOW + 1)
        assert tx.recoveries.close("a" * 64, RecoveryState.COMPLETED, NOW + 2)
        assert not tx.recoveries.approve("a" * 64, "admin", NOW + 3)
        # A closed one no longer counts: a new recovery may open.
        tx.recoveries.add(MfaRecovery("b" * 64, user.id, account.id, NOW, NOW + 10))
        found = tx.recoveries.open_in_account(account.id, [user.id])
    assert [r.id_hash for r in found] == ["b" * 64]
