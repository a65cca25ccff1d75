"""The storage contract (core/ports.py) over the real store.

Runs on SQLite by default and on PostgreSQL with ``--db=postgresql``: the
same tests, so both back ends keep the same promises (atomic single use,
atomic counting, all-or-nothing transactions).
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from quatrix_mfa.core.context import Core
from quatrix_mfa.core.model import (
    Account,
    AuditEvent,
    Credential,
    Mail,
    ResetRequest,
    SessionRecord,
    Step,
    User,
)
from quatrix_mfa.core.ports import DuplicateEmail
from tests.support.storage import NOW, Boom, new_account, new_user

T = TypeVar("T")
THREADS = 8


@pytest.fixture
def user(core: Core, account: Account) -> User:
    with core.store.transaction() as tx:
        return new_user(tx, account, "alice@example.com")


def race(workers: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(i)`` in ``workers`` threads released at the same moment."""
    start = threading.Barrier(workers)

    def run(i: int) -> T:
        start.wait(timeout=30)
        return work(i)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(run, range(workers)))


def session(user: User, token_hash: str, expires_at: float = NOW + 3600) -> SessionRecord:
    return SessionRecord(token_hash, user.id, NOW, NOW, expires_at)


# Users


@pytest.mark.parametrize("read", ["get", "by_email"])
def test_a_user_read_for_a_change_sees_credentials_changed_while_it_waited(
    core: Core, account: Account, read: str
) -> None:
    """A write transaction's read of a user waits for one that holds the user
    (PostgreSQL: its row lock; SQLite: the one writer), and then sees what
    that one committed, the credentials (``enrolled``) included: two removals
    of one factor at once must not both find it on."""
    with core.store.transaction() as tx:
        user = new_user(tx, account, "waits@example.com")
        tx.credentials.add(Credential(str(uuid.uuid4()), user.id, "pin", b"s", None, NOW))
    waiting = threading.Event()
    seen: list[frozenset[str]] = []

    def second() -> None:
        waiting.set()
        with core.store.transaction() as tx:
            found = tx.users.get(user.id) if read == "get" else tx.users.by_email(user.email)
            assert found is not None
            seen.append(found.enrolled)

    with core.store.transaction() as tx:
        assert tx.users.get(user.id) is not None  # holds the user from here
        tx.credentials.delete(user.id, "pin")
        reader = threading.Thread(target=second)
        reader.start()
        waiting.wait(timeout=10)
        reader.join(timeout=0.5)  # it waits for this transaction
        assert reader.is_alive() and not seen
    reader.join(timeout=10)
    assert seen == [frozenset()]


def test_user_is_found_by_email_case_insensitively(core: Core, account: Account) -> None:
    with core.store.transaction() as tx:
        added = new_user(tx, account, "Mixed.Case@Example.COM")
    with core.store.transaction(write=False) as tx:
        lower = tx.users.by_email("mixed.case@example.com")
        upper = tx.users.by_email("MIXED.CASE@EXAMPLE.COM")
        assert tx.users.by_email("mixed.case@example.org") is None
    assert lower is not None and upper is not None
    assert lower.id == upper.id == added.id
    assert lower.email == "mixed.case@example.com"


def test_user_round_trips_every_field(core: Core, account: Account) -> None:
    with core.store.transaction() as tx:
        user = new_user(tx, account, "full@example.com")
        user.super_admin, user.status, user.language = True, "D", "deu"
        user.password_hash, user.last_login = "$argon2id$p", NOW + 1
        user.twofa_active, user.twofa_forced, user.pin_forced = True, True, True
        tx.users.save(user)
    with core.store.transaction(write=False) as tx:
        assert tx.users.get(user.id) == user


def test_a_user_is_read_with_the_kinds_of_credentials_they_hold(
    core: Core, account: Account
) -> None:
    with core.store.transaction() as tx:
        user = new_user(tx, account, "kinds@example.com")
        for kind in ("totp", "pin", "pin"):  # several of one kind count once
            tx.credentials.add(Credential(str(uuid.uuid4()), user.id, kind, b"s", None, NOW))
    with core.store.transaction(write=False) as tx:
        read = tx.users.get(user.id)
        listed = tx.users.in_account(account.id, [user.id])
    assert read is not None and read.enrolled == {"totp", "pin"}
    assert listed[0].enrolled == {"totp", "pin"}
    with core.store.transaction() as tx:
        tx.credentials.delete(user.id, "pin")
    with core.store.transaction(write=False) as tx:
        read = tx.users.by_email("kinds@example.com")
    assert read is not None and read.enrolled == {"totp"}


def test_the_credential_epoch_only_moves_forward_and_closes_older_sessions(
    core: Core, user: User
) -> None:
    with core.store.transaction() as tx:
        tx.sessions.add(session(user, "e" * 64, NOW + 100))
        assert tx.sessions.get_with_owner("e" * 64) is not None
        assert tx.users.bump_epoch(user.id) == 1
        assert tx.users.bump_epoch(user.id) == 2
        # Read in the same statement: a session of an older epoch is not found.
        assert tx.sessions.get_with_owner("e" * 64) is None
        tx.sessions.restamp("e" * 64, 2)
        found = tx.sessions.get_with_owner("e" * 64)
    assert found is not None and found[1].credential_epoch == 2
    with core.store.transaction() as tx:
        user.name = "saved"  # save() writes a stale copy of the user, never its epoch
        tx.users.save(user)
        saved = tx.users.get(user.id)
    assert saved is not None and saved.credential_epoch == 2


def test_duplicate_email_raises_and_the_transaction_stays_usable(
    core: Core, account: Account, user: User
) -> None:
    with core.store.transaction() as tx:
        other = new_user(tx, account, "bob@example.com")
        with pytest.raises(DuplicateEmail):
            new_user(tx, account, "ALICE@example.com")
        # The failed insert was inside a savepoint: the caller can go on.
        third = new_user(tx, account, "carol@example.com")
    with core.store.transaction(write=False) as tx:
        emails = sorted(u.email for u in tx.users.in_account(account.id))
        assert tx.users.get(other.id) is not None and tx.users.get(third.id) is not None
    assert emails == ["alice@example.com", "bob@example.com", "carol@example.com"]


def test_saving_a_user_with_a_taken_email_raises_and_changes_nothing(
    core: Core, account: Account, user: User
) -> None:
    with core.store.transaction() as tx:
        bob = new_user(tx, account, "bob@example.com")
    with core.store.transaction() as tx:
        bob.email, bob.name = "Alice@Example.com", "renamed"
        with pytest.raises(DuplicateEmail):
            tx.users.save(bob)
        bob.email = "bob@example.com"
        tx.users.save(bob)
    with core.store.transaction(write=False) as tx:
        saved = tx.users.get(bob.id)
    assert saved is not None and (saved.email, saved.name) == ("bob@example.com", "renamed")


def test_users_are_listed_per_account(core: Core, account: Account, user: User) -> None:
    with core.store.transaction() as tx:
        other_account = new_account(tx)
        stranger = new_user(tx, other_account, "stranger@example.com")
    with core.store.transaction(write=False) as tx:
        assert [u.id for u in tx.users.in_account(account.id)] == [user.id]
        assert tx.users.in_account(account.id, [user.id, stranger.id]) == [user]
        assert tx.users.in_account(other_account.id, [user.id]) == []


def test_one_email_may_be_in_several_accounts_but_signs_in_as_one_user(
    core: Core, account: Account, user: User
) -> None:
    """Issue 17, item 7: unique per account; across accounts unique only among
    users with a password (the sign-in identities)."""
    with core.store.transaction() as tx:
        elsewhere = new_user(tx, new_account(tx), "ALICE@example.com")
        third = new_user(tx, new_account(tx), "alice@example.com")
    with core.store.transaction() as tx:
        elsewhere.password_hash = "$argon2id$elsewhere"
        tx.users.save(elsewhere)
        third.password_hash = "$argon2id$third"
        with pytest.raises(DuplicateEmail):
            tx.users.save(third)
    with core.store.transaction(write=False) as tx:
        holder = tx.users.by_email("alice@example.com")
        mine = tx.users.in_account_by_email(account.id, "alice@example.com")
        stored = tx.users.get(third.id)
    assert holder is not None and holder.id == elsewhere.id  # the sign-in identity first
    assert mine is not None and mine.id == user.id
    assert stored is not None and stored.password_hash is None


def test_without_a_sign_in_identity_the_newest_active_invitation_is_found(
    core: Core, account: Account, user: User
) -> None:
    with core.store.transaction() as tx:
        newer = dataclasses.replace(user, id=str(uuid.uuid4()), created=NOW + 5)
        newer.account_id = new_account(tx).id
        tx.users.add(newer)
        disabled = dataclasses.replace(user, id=str(uuid.uuid4()), created=NOW + 9, status="D")
        disabled.account_id = new_account(tx).id
        tx.users.add(disabled)
    with core.store.transaction(write=False) as tx:
        found = tx.users.by_email("alice@example.com")
        assert tx.users.in_account_by_email(account.id, "nobody@example.com") is None
    assert found is not None and found.id == newer.id


# Factors


@pytest.fixture
def credential(core: Core, user: User) -> Credential:
    secret = Credential(str(uuid.uuid4()), user.id, "totp", b"\x00sealed\xff", "k1", NOW)
    with core.store.transaction() as tx:
        tx.credentials.add(secret)
    return secret


def test_a_user_may_hold_several_credentials_of_one_kind(
    core: Core, user: User, credential: Credential
) -> None:
    second = Credential(str(uuid.uuid4()), user.id, "totp", b"other", "k1", NOW + 1, None, "two")
    with core.store.transaction() as tx:
        tx.credentials.add(second)
        tx.credentials.add(Credential(str(uuid.uuid4()), user.id, "pin", b"$argon2", None, NOW))
    with core.store.transaction(write=False) as tx:
        assert tx.credentials.of_user(user.id, "totp") == [credential, second]
    with core.store.transaction() as tx:
        tx.credentials.delete(user.id, "totp")
    with core.store.transaction(write=False) as tx:
        assert tx.credentials.of_user(user.id, "totp") == []
        assert len(tx.credentials.of_user(user.id, "pin")) == 1


def test_totp_step_advances_only_forward(core: Core, user: User, credential: Credential) -> None:
    advance = []
    for step in (100, 100, 99, 101, 50, 102):
        with core.store.transaction() as tx:
            advance.append(tx.credentials.advance_step(user.id, credential.id, step))
    assert advance == [True, False, False, True, False, True]
    with core.store.transaction(write=False) as tx:
        (stored,) = tx.credentials.of_user(user.id, "totp")
    assert stored.last_step == 102
    assert stored.secret == credential.secret


def test_totp_step_does_not_advance_for_another_credential(
    core: Core, user: User, credential: Credential
) -> None:
    with core.store.transaction() as tx:
        assert not tx.credentials.advance_step(user.id, str(uuid.uuid4()), 100)
        assert not tx.credentials.advance_step(str(uuid.uuid4()), credential.id, 100)
        (stored,) = tx.credentials.of_user(user.id, "totp")
    assert stored.last_step is None


def test_racing_totp_step_advances_have_exactly_one_winner(
    core: Core, user: User, credential: Credential
) -> None:
    def redeem(_: int) -> bool:
        with core.store.transaction() as tx:
            return tx.credentials.advance_step(user.id, credential.id, 500)

    assert sorted(race(THREADS, redeem)) == [False] * (THREADS - 1) + [True]


def test_recovery_code_is_consumed_once(core: Core, user: User, account: Account) -> None:
    with core.store.transaction() as tx:
        bob = new_user(tx, account, "bob@example.com")
        tx.credentials.replace_recovery_codes(user.id, ["a" * 64, "b" * 64])
        tx.credentials.replace_recovery_codes(bob.id, ["a" * 64])
    with core.store.transaction() as tx:
        assert tx.credentials.consume_recovery_code(user.id, "a" * 64, NOW)
    with core.store.transaction() as tx:
        assert not tx.credentials.consume_recovery_code(user.id, "a" * 64, NOW)
        assert not tx.credentials.consume_recovery_code(user.id, "c" * 64, NOW)
        assert tx.credentials.recovery_codes_left(user.id) == 1
        assert tx.credentials.recovery_codes_left(bob.id) == 1  # bob's identical hash is untouched
        assert tx.credentials.consume_recovery_code(bob.id, "a" * 64, NOW)


def test_racing_recovery_code_consumers_have_exactly_one_winner(core: Core, user: User) -> None:
    with core.store.transaction() as tx:
        tx.credentials.replace_recovery_codes(user.id, ["d" * 64])

    def consume(_: int) -> bool:
        with core.store.transaction() as tx:
            return tx.credentials.consume_recovery_code(user.id, "d" * 64, NOW)

    assert sorted(race(THREADS, consume)) == [False] * (THREADS - 1) + [True]


# Password reset links


def test_reset_link_is_consumed_once_and_not_after_expiry(core: Core, user: User) -> None:
    with core.store.transaction() as tx:
        tx.resets.add(ResetRequest("1" * 64, user.id, NOW, NOW + 3600))
        tx.resets.add(ResetRequest("2" * 64, user.id, NOW, NOW + 3600))
    with core.store.transaction() as tx:
        assert tx.resets.consume("1" * 64, NOW + 10)
        assert not tx.resets.consume("1" * 64, NOW + 20)
        assert not tx.resets.consume("2" * 64, NOW + 3600)  # expiry is exclusive
        assert not tx.resets.consume("3" * 64, NOW)
        used = tx.resets.get("1" * 64)
        unused = tx.resets.get("2" * 64)
    assert used is not None and used.used_at == NOW + 10
    assert unused is not None and unused.used_at is None


def test_email_change_links_keep_their_address_and_are_dropped_apart(
    core: Core, user: User
) -> None:
    with core.store.transaction() as tx:
        tx.resets.add(ResetRequest("1" * 64, user.id, NOW, NOW + 3600))
        change = ResetRequest("2" * 64, user.id, NOW + 1, NOW + 3600, new_email="new@example.com")
        tx.resets.add(change)
    with core.store.transaction() as tx:
        assert tx.resets.get("2" * 64) == change
        latest = tx.resets.latest_for_user(user.id)
        assert latest is not None and latest.id_hash == "1" * 64  # password links only
        tx.resets.delete_email_changes(user.id)
        assert tx.resets.get("2" * 64) is None and tx.resets.get("1" * 64) is not None


# Sessions


def test_session_failures_are_counted_and_a_missing_session_counts_zero(
    core: Core, user: User
) -> None:
    with core.store.transaction() as tx:
        tx.sessions.add(session(user, "s" * 64))
    counts = []
    for _ in range(3):
        with core.store.transaction() as tx:
            counts.append(tx.sessions.add_failure("s" * 64))
    with core.store.transaction() as tx:
        assert tx.sessions.add_failure("missing") == 0
        assert tx.sessions.get("missing") is None
        stored = tx.sessions.get("s" * 64)
    assert counts == [1, 2, 3]
    assert stored is not None and stored.failures == 3


def test_session_round_trips_its_steps_and_is_deleted_once(core: Core, user: User) -> None:
    pending = SessionRecord("p" * 64, user.id, NOW, NOW, NOW + 300, (Step.PIN, Step.ENROLL_TOTP))
    with core.store.transaction() as tx:
        tx.sessions.add(pending)
        assert tx.sessions.get("p" * 64) == pending
    with core.store.transaction() as tx:
        assert tx.sessions.delete("p" * 64) is True
        assert tx.sessions.delete("p" * 64) is False


def test_closing_sessions_for_users_keeps_the_one_named(
    core: Core, user: User, account: Account
) -> None:
    with core.store.transaction() as tx:
        bob = new_user(tx, account, "bob@example.com")
        for token in ("1", "2", "3"):
            tx.sessions.add(session(user, token * 64))
        tx.sessions.add(session(bob, "b" * 64))
    with core.store.transaction() as tx:
        assert tx.sessions.close_for_users([user.id], keep="2" * 64) == 2
        left = [t * 64 for t in "123b" if tx.sessions.get(t * 64) is not None]
    assert left == ["2" * 64, "b" * 64]
    with core.store.transaction() as tx:
        assert tx.sessions.close_for_users([user.id, bob.id]) == 2
        assert tx.sessions.get("2" * 64) is None and tx.sessions.get("b" * 64) is None


def test_sessions_of_an_account_are_listed_with_their_address_and_closed_by_hash(
    core: Core, user: User, account: Account
) -> None:
    other = Account(id=str(uuid.uuid4()), name="Other", created=NOW, modified=NOW)
    with core.store.transaction() as tx:
        tx.accounts.add(other)
        stranger = new_user(tx, other, "stranger@example.com")
        tx.sessions.add(dataclasses.replace(session(user, "1" * 64), client_addr="10.0.0.5"))
        tx.sessions.add(session(user, "2" * 64))
        tx.sessions.add(dataclasses.replace(session(stranger, "s" * 64), client_addr="10.0.0.6"))
    with core.store.transaction() as tx:
        assert tx.sessions.get("1" * 64) == dataclasses.replace(
            session(user, "1" * 64), client_addr="10.0.0.5"
        )
        assert sorted(tx.sessions.addresses_in_account(account.id)) == [
            ("1" * 64, user.id, "10.0.0.5"),
            ("2" * 64, user.id, None),
        ]
        assert tx.sessions.close(["1" * 64, "s" * 64, "missing"]) == 2
        assert tx.sessions.close([]) == 0
        left = [t * 64 for t in "12s" if tx.sessions.get(t * 64) is not None]
    assert left == ["2" * 64]


def test_a_users_sessions_are_listed_and_deleted_only_by_their_owner(
    core: Core, user: User, account: Account
) -> None:
    with core.store.transaction() as tx:
        bob = new_user(tx, account, "bob@example.com")
        tx.sessions.add(dataclasses.replace(session(user, "2" * 64), created=NOW + 1))
        tx.sessions.add(session(user, "1" * 64))
        tx.sessions.add(session(bob, "b" * 64))
    with core.store.transaction() as tx:
        assert [s.token_hash for s in tx.sessions.of_user(user.id)] == ["1" * 64, "2" * 64]
        assert tx.sessions.delete_of_user(user.id, "b" * 64) is False  # bob's
        assert tx.sessions.delete_of_user(user.id, "1" * 64) is True
        assert tx.sessions.delete_of_user(user.id, "1" * 64) is False
        assert [s.token_hash for s in tx.sessions.of_user(user.id)] == ["2" * 64]
        assert [s.token_hash for s in tx.sessions.of_user(bob.id)] == ["b" * 64]


def test_a_session_is_claimed_by_one_caller_until_released_or_lapsed(
    core: Core, user: User
) -> None:
    with core.store.transaction() as tx:
        tx.sessions.add(session(user, "c" * 64))
    with core.store.transaction() as tx:
        assert tx.sessions.claim("c" * 64, NOW, NOW + 30) is True
        assert tx.sessions.claim("c" * 64, NOW + 29, NOW + 59) is False
        assert tx.sessions.claim("missing", NOW, NOW + 30) is False
    with core.store.transaction() as tx:
        assert tx.sessions.claim("c" * 64, NOW + 30, NOW + 60) is True  # lapsed
        tx.sessions.release("c" * 64)
        assert tx.sessions.claim("c" * 64, NOW + 31, NOW + 61) is True
    wins = race(8, lambda i: _claim_alone(core, "c" * 64, NOW + 100))
    assert sorted(wins) == [False] * 7 + [True]


def _claim_alone(core: Core, token_hash: str, now: float) -> bool:
    with core.store.transaction() as tx:
        return tx.sessions.claim(token_hash, now, now + 30)


def test_purge_removes_expired_and_idle_full_sessions_only(core: Core, user: User) -> None:
    idle = 900.0
    with core.store.transaction() as tx:
        tx.sessions.add(session(user, "e" * 64, expires_at=NOW + 100))  # hard-expired
        tx.sessions.add(SessionRecord("i" * 64, user.id, NOW, NOW, NOW + 9999))  # idle full
        tx.sessions.add(SessionRecord("f" * 64, user.id, NOW, NOW + 500, NOW + 9999))  # fresh
        tx.sessions.add(SessionRecord("p" * 64, user.id, NOW, NOW, NOW + 9999, (Step.TOTP,)))
    with core.store.transaction() as tx:
        found = tx.sessions.expired(NOW + idle + 1, idle)
        assert tx.sessions.delete_expired(found, NOW + idle + 1, idle) == 2
        kept = [t * 64 for t in "eifp" if tx.sessions.get(t * 64) is not None]
    assert kept == ["f" * 64, "p" * 64]


def test_expired_sessions_are_found_in_a_read_and_one_used_since_is_kept(
    core: Core, user: User
) -> None:
    idle = 900.0
    with core.store.transaction() as tx:
        tx.sessions.add(SessionRecord("i" * 64, user.id, NOW, NOW, NOW + 9999))  # idle full
        tx.sessions.add(SessionRecord("j" * 64, user.id, NOW, NOW, NOW + 9999))  # idle full
        tx.sessions.add(SessionRecord("f" * 64, user.id, NOW, NOW + 500, NOW + 9999))  # fresh
    later = NOW + idle + 1
    with core.store.transaction(write=False) as tx:
        found = tx.sessions.expired(later, idle)
    assert sorted(found) == ["i" * 64, "j" * 64]
    with core.store.transaction() as tx:
        tx.sessions.touch("j" * 64, later)  # used between the read and the purge
    with core.store.transaction() as tx:
        assert tx.sessions.delete_expired([*found, "f" * 64], later, idle) == 1
        kept = [t * 64 for t in "ijf" if tx.sessions.get(t * 64) is not None]
    assert kept == ["j" * 64, "f" * 64]


# Throttle


@pytest.mark.parametrize("keys", [["u:shared"], ["u:shared", "a:shared"]])
def test_concurrent_throttle_failures_are_each_counted_once(core: Core, keys: list[str]) -> None:
    per_thread = 5

    def fail(_: int) -> list[list[int]]:
        counts = []
        for _ in range(per_thread):
            with core.store.transaction() as tx:
                counts.append(tx.throttle.add_failures(keys, NOW))
        return counts

    seen = [counts for thread in race(THREADS, fail) for counts in thread]
    for i in range(len(keys)):  # every key: each count seen once
        assert sorted(c[i] for c in seen) == list(range(1, THREADS * per_thread + 1))
    with core.store.transaction(write=False) as tx:
        states = tx.throttle.states(keys)
    assert [s.failures for s in states] == [THREADS * per_thread] * len(keys)


def test_keys_counted_at_once_each_get_their_own_count_in_their_order(core: Core) -> None:
    with core.store.transaction() as tx:
        for _ in range(3):
            tx.throttle.add_failures(["a:10.0.0.0/24"], NOW)
        assert tx.throttle.add_failures(["u:new", "a:10.0.0.0/24"], NOW) == [1, 4]
        assert tx.throttle.add_failures(["a:10.0.0.0/24", "u:new"], NOW) == [5, 2]
        assert tx.throttle.add_failures(["u:a", "u:b", "u:new"], NOW) == [1, 1, 3]
        assert tx.throttle.add_failures([], NOW) == []


def test_a_key_named_twice_in_one_count_is_refused_and_counts_nothing(core: Core) -> None:
    with pytest.raises(ValueError), core.store.transaction() as tx:
        tx.throttle.add_failures(["u:twice", "u:twice"], NOW)
    with core.store.transaction(write=False) as tx:
        assert tx.throttle.states(["u:twice"]) == []


def test_throttle_block_never_lowers(core: Core) -> None:
    with core.store.transaction() as tx:
        assert tx.throttle.add_failures(["a:1.2.3.4"], NOW) == [1]
        tx.throttle.block_until("a:1.2.3.4", NOW + 100)
        tx.throttle.block_until("a:1.2.3.4", NOW + 50)
        [state] = tx.throttle.states(["a:1.2.3.4"])
        assert state.blocked_until == NOW + 100
        tx.throttle.block_until("a:1.2.3.4", NOW + 200)
        [state] = tx.throttle.states(["a:1.2.3.4", "a:unrelated"])
        assert state.blocked_until == NOW + 200


def test_throttle_clear_resets_one_key_only(core: Core) -> None:
    with core.store.transaction() as tx:
        for key in ("u:x", "u:x", "a:y"):
            tx.throttle.add_failures([key], NOW)
        tx.throttle.clear("u:x")
        assert tx.throttle.add_failures(["u:x"], NOW + 1) == [1]
        assert [(s.key, s.failures) for s in tx.throttle.states(["a:y"])] == [("a:y", 1)]


# Outbox


def enqueue(core: Core, count: int) -> None:
    with core.store.transaction() as tx:
        for i in range(count):
            tx.outbox.enqueue(Mail(f"user{i}@example.com", "Subject", "Body", NOW))


def claim(core: Core, now: float, lease: float = 60.0) -> list[int]:
    with core.store.transaction() as tx:
        return [m.id for m in tx.outbox.claim_due(now, lease, 100) if m.id is not None]


def test_listing_the_outbox_shows_the_newest_mails_oldest_first(core: Core) -> None:
    enqueue(core, 5)
    with core.store.transaction(write=False) as tx:
        shown = [m.to for m in tx.outbox.list(3)]
    assert shown == ["user2@example.com", "user3@example.com", "user4@example.com"]


def test_claimed_mail_is_not_handed_out_again_within_its_lease(core: Core) -> None:
    enqueue(core, 3)
    first = claim(core, NOW)
    assert len(first) == 3
    assert claim(core, NOW + 59) == []
    assert sorted(claim(core, NOW + 61)) == sorted(first)  # the lease ran out
    with core.store.transaction(write=False) as tx:
        assert [m.attempts for m in tx.outbox.list()] == [2, 2, 2]


def test_concurrent_claimers_never_share_a_mail(core: Core) -> None:
    enqueue(core, 20)
    claims = race(THREADS, lambda _: claim(core, NOW))
    every = [mail_id for mine in claims for mail_id in mine]
    assert len(every) == 20
    assert len(set(every)) == 20


def test_sent_mail_is_never_claimed_and_failed_mail_waits(core: Core) -> None:
    enqueue(core, 2)
    sent, failed = sorted(claim(core, NOW))
    with core.store.transaction() as tx:
        tx.outbox.mark_sent(sent, NOW + 1)
        tx.outbox.mark_failed(failed, NOW + 300, "connection refused")
    assert claim(core, NOW + 2) == []
    assert claim(core, NOW + 299) == []
    assert claim(core, NOW + 300) == [failed]
    with core.store.transaction(write=False) as tx:
        by_id = {m.id: m for m in tx.outbox.list()}
    assert by_id[sent].sent_at == NOW + 1
    assert by_id[failed].last_error == "connection refused"


def test_a_given_up_mail_is_never_claimed_keeps_only_its_reason_and_is_purged_later(
    core: Core,
) -> None:
    with core.store.transaction() as tx:
        tx.outbox.enqueue(Mail("a@example.com", "S", "Body", NOW, secret=b"sealed", key_id="k1"))
    [mail_id] = claim(core, NOW)
    with core.store.transaction() as tx:
        tx.outbox.give_up(mail_id, "dropped: the link expired")
    assert claim(core, NOW + 10 * 365 * 86400) == []
    with core.store.transaction(write=False) as tx:
        [mail] = tx.outbox.list()
    assert mail.given_up and mail.sent_at is None and mail.attempts == 1
    assert (mail.body, mail.secret, mail.key_id) == ("", None, None)
    assert mail.last_error == "dropped: the link expired"
    with core.store.transaction() as tx:
        assert tx.outbox.purge_sent(NOW, 10) == 0  # queued at NOW: kept until later
        assert tx.outbox.purge_sent(NOW + 1, 10) == 1


# Audit


def test_audit_list_filters_by_target_in_order(core: Core, user: User) -> None:
    other = str(uuid.uuid4())
    with core.store.transaction() as tx:
        for i, target in enumerate([user.id, other, user.id, other, user.id]):
            tx.audit.append(
                AuditEvent(NOW + i, f"event{i}", "success", target_id=target, detail={"n": i})
            )
    with core.store.transaction(write=False) as tx:
        mine = tx.audit.list(target_id=user.id)
        latest_two = tx.audit.list(target_id=user.id, limit=2)
        everything = tx.audit.list()
    assert [e.event for e in mine] == ["event0", "event2", "event4"]
    assert {e.target_id for e in mine} == {user.id}
    assert [e.detail for e in mine] == [{"n": 0}, {"n": 2}, {"n": 4}]
    assert [e.event for e in latest_two] == ["event2", "event4"]
    assert len(everything) == 5


# Transactions


def test_transaction_that_raises_leaves_no_partial_write(core: Core, user: User) -> None:
    with pytest.raises(Boom), core.store.transaction() as tx:
        account = new_account(tx)
        newcomer = new_user(tx, account, "newcomer@example.com")
        tx.sessions.add(session(user, "r" * 64))
        tx.throttle.add_failures(["u:rolled-back"], NOW)
        tx.audit.append(AuditEvent(NOW, "login", "failure", target_id=user.id))
        user.name = "changed"
        tx.users.save(user)
        raise Boom
    with core.store.transaction(write=False) as tx:
        assert tx.accounts.get(account.id) is None
        assert tx.users.get(newcomer.id) is None
        assert tx.sessions.get("r" * 64) is None
        assert tx.throttle.states(["u:rolled-back"]) == []
        assert tx.audit.list(target_id=user.id) == []
        saved = tx.users.get(user.id)
    assert saved is not None and saved.name == "alice"


def test_transaction_that_raises_after_a_duplicate_email_rolls_back_too(
    core: Core, account: Account, user: User
) -> None:
    with pytest.raises(Boom), core.store.transaction() as tx:
        bob = new_user(tx, account, "bob@example.com")
        with pytest.raises(DuplicateEmail):
            new_user(tx, account, "alice@example.com")
        raise Boom
    with core.store.transaction(write=False) as tx:
        assert tx.users.get(bob.id) is None
        assert [u.id for u in tx.users.in_account(account.id)] == [user.id]
