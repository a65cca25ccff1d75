"""Repository protocols: what core needs from storage, nothing more.

Every method that enforces a single-use or counting rule is one atomic
statement in the implementation, so it holds across processes and hosts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, TypeVar

from quatrix_mfa.core.model import (
    Account,
    AuditEvent,
    Credential,
    Mail,
    MfaRecovery,
    RecoveryState,
    ResetRequest,
    SessionRecord,
    ThrottleState,
    TotpEnrollment,
    TrustedDevice,
    User,
)

T = TypeVar("T")


@dataclass(frozen=True)
class UserQuery:
    """Which users of an account a search returns (None: any). ``text`` is
    found in the email or the name; ``chosen``: 2FA turned on for the user
    (``twofa_active`` or ``twofa_forced``); ``forced``: ``twofa_forced``;
    ``kind``/``has_kind``: they hold (or not) a credential of that kind."""

    text: str | None = None
    status: str | None = None
    chosen: bool | None = None
    forced: bool | None = None
    kind: str | None = None
    has_kind: bool | None = None


@dataclass(frozen=True)
class AuditQuery:
    """Which audit rows of an account a search returns (None: any); ``user_id``
    matches the actor or the target; ``since`` and ``until`` bound ``at``."""

    user_id: str | None = None
    event: str | None = None
    outcome: str | None = None
    since: float | None = None
    until: float | None = None


class AccountRepository(Protocol):
    def get(self, account_id: str) -> Account | None: ...
    def lock(self, account_id: str) -> None:
        """Make other writers that lock this account wait until this
        transaction ends: every change of who administers it takes this lock
        first, so its check of the administrators left sees the others'."""
        ...

    def first(self) -> Account | None: ...
    def all(self) -> list[Account]:
        """Every account, oldest first (the command line's ``user list``)."""
        ...

    def add(self, account: Account) -> None: ...
    def save(self, account: Account) -> None:
        """Write the account back, all but ``mfa_stage`` (moved only by the two below)."""
        ...

    def in_mfa_rollout(self) -> list[Account]:
        """The accounts forcing 2FA with a deadline whose rollout is not done."""
        ...

    def claim_mfa_stage(self, account_id: str, deadline: float, stage: int) -> bool:
        """Atomically move the account's rollout to ``stage`` if it still forces
        2FA by ``deadline`` and is at an earlier stage; True for one caller."""
        ...

    def end_trust(self, account_id: str) -> int:
        """Atomically bump the account's trust epoch; the new epoch."""
        ...

    def restart_mfa_stage(self, account_id: str) -> None:
        """A new deadline: its reminders are still to be sent."""
        ...


class UserRepository(Protocol):
    def get(self, user_id: str) -> User | None: ...
    def lock(self, user_id: str) -> None:
        """Make other writers of this user wait until this transaction ends
        (what ``get`` in a write transaction does too, without reading the row)."""
        ...

    def by_email(self, email: str) -> User | None:
        """Case-insensitive lookup (``email`` is already lower-cased) across
        accounts: the user who signs in with ``email`` (has a password; there
        is at most one), else the newest active user invited with it, else
        any (a disabled one)."""
        ...

    def in_account_by_email(self, account_id: str, email: str) -> User | None:
        """The account's user with ``email`` (unique within an account)."""
        ...

    def in_account(self, account_id: str, ids: Sequence[str] | None = None) -> list[User]: ...
    def add(self, user: User) -> None: ...
    def save(self, user: User) -> None: ...
    def record_login(
        self, user_id: str, last_login: float | None, password_hash: str | None
    ) -> None:
        """Set only what a login changes (no stale copy of the row is written back)."""
        ...

    def bump_epoch(self, user_id: str) -> int:
        """Atomically add one to the user's credential epoch; returns the new one."""
        ...

    def delete(self, ids: Sequence[str]) -> None: ...
    def count_admins(self, account_id: str) -> int: ...
    def find(
        self, account_id: str, query: UserQuery, after: tuple[str, str] | None, limit: int
    ) -> list[User]:
        """Up to ``limit`` users of the account matching ``query``, ordered by
        (email, id), after the (email, id) ``after``: a seek on an index,
        never an offset, so a deep page costs what the first one does."""
        ...

    def count(self, account_id: str, query: UserQuery) -> int: ...


class CredentialRepository(Protocol):
    def of_user(self, user_id: str, kind: str) -> list[Credential]:
        """The user's credentials of ``kind``, oldest first."""
        ...

    def add(self, credential: Credential) -> None: ...
    def delete(self, user_id: str, kind: str) -> None:
        """Remove every credential of ``kind`` the user holds."""
        ...

    def advance_step(
        self, user_id: str, credential_id: str, step: int, offset: int | None = None
    ) -> bool:
        """Atomically move the credential's replay guard to ``step`` if it is
        later than the stored one, recording the code's step ``offset`` (-1, 0,
        +1) in the same statement; False if another request got there first."""
        ...

    def set_burned_steps(self, user_id: str, credential_id: str, steps: Sequence[int]) -> None:
        """Replace the credential's burned future steps (core/factors/drift.py);
        the caller holds the user's row lock."""
        ...

    def drift_offsets(self, user_ids: Sequence[str]) -> dict[str, int]:
        """Of ``user_ids``, those whose TOTP seed's last accepted code was off
        by a step (non-zero ``last_offset``), with that offset."""
        ...

    def enrollment(self, user_id: str) -> TotpEnrollment | None: ...
    def put_enrollment(self, enrollment: TotpEnrollment) -> None: ...
    def delete_enrollment(self, user_id: str) -> None: ...
    def replace_recovery_codes(self, user_id: str, code_hashes: Sequence[str]) -> None: ...
    def consume_recovery_code(self, user_id: str, code_hash: str, now: float) -> bool:
        """Atomically mark one unused code used; False if it was not there or already used."""
        ...

    def recovery_codes_left(self, user_id: str) -> int: ...
    def delete_recovery_codes(self, user_id: str) -> None: ...
    def purge_enrollments(self, now: float, limit: int) -> int: ...
    def encrypted_rows(self, not_key_id: str, limit: int) -> list[tuple[str, str, bytes, str]]:
        """(table, user_id, ciphertext, key_id) rows not under ``not_key_id``."""
        ...

    def reencrypt(
        self, table: str, user_id: str, old: bytes, new: bytes, new_key_id: str
    ) -> bool: ...


class SessionRepository(Protocol):
    def add(self, session: SessionRecord) -> None: ...
    def get(self, token_hash: str) -> SessionRecord | None: ...
    def get_with_owner(self, token_hash: str) -> tuple[SessionRecord, User, Account] | None:
        """The session, its user and the user's account, read together (every
        request); None also when the session's epoch is not its user's current
        credential epoch (it was closed by a change of credentials)."""
        ...

    def touch(self, token_hash: str, now: float) -> None: ...
    def delete(self, token_hash: str) -> bool:
        """Atomically remove; True only for the one caller that removed it."""
        ...

    def add_failure(self, token_hash: str) -> int:
        """Atomically count a wrong code; returns the new count (0 if gone)."""
        ...

    def close_for_users(self, user_ids: Sequence[str], keep: str | None = None) -> int: ...
    def of_user(self, user_id: str) -> list[SessionRecord]:
        """Every stored session of the user (live or not yet purged), oldest first."""
        ...

    def delete_of_user(self, user_id: str, token_hash: str) -> bool:
        """Atomically remove the session only if it is the user's; True if removed."""
        ...

    def addresses_in_account(self, account_id: str) -> list[tuple[str, str, str | None]]:
        """(token hash, user id, client address) of every session of the
        account's users."""
        ...

    def claim(self, token_hash: str, now: float, until: float) -> bool:
        """Atomically mark the session busy until ``until`` unless it is busy at
        ``now``; True for the one caller that claimed it."""
        ...

    def release(self, token_hash: str) -> None:
        """End the session's claim."""
        ...

    def close(self, token_hashes: Sequence[str]) -> int:
        """Delete these sessions; returns how many there were."""
        ...

    def count_open(self, account_id: str, query: UserQuery, now: float, idle_since: float) -> int:
        """How many live sessions (unexpired, current epoch, a full one seen
        since ``idle_since``) the account's users matching ``query`` hold."""
        ...

    def restamp(self, token_hash: str, epoch: int) -> None:
        """Move a session to another credential epoch (the one a change keeps)."""
        ...

    def expired(self, now: float, idle_seconds: float, limit: int = 1000) -> list[str]:
        """Token hashes of up to ``limit`` sessions past their expiry or idle
        time: a read, so that the scan it may take holds no write lock."""
        ...

    def delete_expired(self, token_hashes: Sequence[str], now: float, idle_seconds: float) -> int:
        """Delete those of ``token_hashes`` that are still expired (a session
        used since it was found is kept); returns how many."""
        ...


class ThrottleRepository(Protocol):
    def states(self, keys: Sequence[str]) -> list[ThrottleState]: ...
    def add_failures(self, keys: Sequence[str], now: float) -> list[int]:
        """Atomically count one failure against each of ``keys`` (distinct);
        returns their new counts, in the order of ``keys``."""
        ...

    def block_until(self, key: str, until: float) -> None:
        """Raise ``blocked_until`` to ``until`` (never lowers it)."""
        ...

    def attempt(self, key: str, now: float) -> ThrottleState:
        """Atomically count one failure unless the key is blocked at ``now``, and
        lock the key until the transaction ends; returns its state after that."""
        ...

    def take_back(self, key: str, blocked_until: float, before: float) -> None:
        """Uncount one failure; if ``blocked_until`` is still as that failure set
        it, put back ``before``."""
        ...

    def clear(self, key: str) -> None: ...
    def purge_idle(self, before: float, now: float, limit: int) -> int:
        """Forget counters untouched since ``before`` and no longer blocking."""
        ...


class AuditRepository(Protocol):
    def append(self, event: AuditEvent) -> None: ...
    def find(
        self, account_id: str, query: AuditQuery, before: int | None, limit: int
    ) -> list[AuditEvent]:
        """Up to ``limit`` rows of the account matching ``query``, newest first,
        with an id below ``before`` (a seek on (account_id, id))."""
        ...

    def list(self, target_id: str | None = None, limit: int = 1000) -> list[AuditEvent]: ...
    def purge(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` rows recorded before ``before``; returns how many."""
        ...


class OutboxRepository(Protocol):
    def enqueue(self, mail: Mail) -> None: ...
    def claim_due(self, now: float, lease: float, limit: int) -> list[Mail]: ...
    def mark_sent(self, mail_id: int, now: float) -> None:
        """Record delivery, and empty the body and its sealed secret."""
        ...

    def mark_failed(self, mail_id: int, next_attempt_at: float, error: str) -> None: ...
    def give_up(self, mail_id: int, reason: str) -> None:
        """Never send the mail (``next_attempt_at`` becomes ``model.NEVER``),
        keep ``reason`` as its last error and empty its body and sealed secret:
        a link that is not mailed is not kept either."""
        ...

    def list(self, limit: int = 1000) -> list[Mail]:
        """The newest ``limit`` mails, oldest first."""
        ...

    def purge_sent(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` mails sent, or given up and queued, before ``before``."""
        ...


class ResetRepository(Protocol):
    def add(self, reset: ResetRequest) -> None: ...
    def add_if_user(self, reset: ResetRequest, mail: Mail) -> bool:
        """Store ``reset`` and queue ``mail`` if ``reset.user_id`` names a user, else
        write nothing; the same statements either way, so it takes the same time."""
        ...

    def get(self, id_hash: str) -> ResetRequest | None: ...
    def consume(self, id_hash: str, now: float) -> bool:
        """Atomically mark used if unused and unexpired; True for exactly one caller."""
        ...

    def latest_for_user(self, user_id: str) -> ResetRequest | None:
        """The user's newest password link (not a link confirming an email)."""
        ...

    def delete_for_user(self, user_id: str) -> None:
        """Every link of the user, of both kinds."""
        ...

    def delete_email_changes(self, user_id: str) -> None:
        """The user's links that confirm a change of email."""
        ...

    def purge(self, now: float, limit: int) -> int:
        """Delete used and expired links."""
        ...


class RecoveryRepository(Protocol):
    def add(self, recovery: MfaRecovery) -> None: ...
    def open_for_user(self, user_id: str) -> MfaRecovery | None:
        """The user's open recovery (there is at most one)."""
        ...

    def open_in_account(self, account_id: str, user_ids: Sequence[str]) -> list[MfaRecovery]: ...
    def get(self, id_hash: str) -> MfaRecovery | None: ...
    def close(self, id_hash: str, state: RecoveryState, now: float) -> bool:
        """Atomically close the recovery if still open; True for exactly one caller."""
        ...

    def approve(self, id_hash: str, by: str, now: float) -> bool:
        """Atomically mark an open recovery that no administrator approved yet
        approved by ``by`` and ready at ``now``; True for exactly one caller
        (a repeated approval keeps the first one's approver and time)."""
        ...


class TrustedDeviceRepository(Protocol):
    def add(self, device: TrustedDevice) -> None: ...
    def use(
        self,
        token_hash: str,
        user_id: str,
        epoch: int,
        trust_epoch: int,
        created_after: float,
        now: float,
    ) -> str | None:
        """Atomically: if the device of ``token_hash`` belongs to ``user_id``,
        was given under ``epoch`` and ``trust_epoch``, has not expired at
        ``now`` and was created after ``created_after``, stamp its last use
        and return its id; else None (and nothing changes)."""
        ...

    def owner_of(self, token_hash: str) -> str | None:
        """The user a stored device token belongs to (for the audit of a refusal)."""
        ...

    def of_user(self, user_id: str) -> list[TrustedDevice]:
        """Newest first."""
        ...

    def delete_of_user(self, user_id: str, ids: Sequence[str]) -> list[str]:
        """Delete those of ``ids`` that are ``user_id``'s devices; the ids deleted."""
        ...

    def delete_for_users(self, user_ids: Sequence[str]) -> int: ...
    def delete_in_account(self, account_id: str, created_until: float | None = None) -> int:
        """Delete the account's devices (with ``created_until``: only those
        created at or before it), in one statement; how many went."""
        ...

    def purge_expired(self, now: float, limit: int) -> int: ...


class Transaction(Protocol):
    """One unit of work: every repository over the same database transaction."""

    @property
    def accounts(self) -> AccountRepository: ...

    @property
    def users(self) -> UserRepository: ...

    @property
    def credentials(self) -> CredentialRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def throttle(self) -> ThrottleRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    @property
    def outbox(self) -> OutboxRepository: ...

    @property
    def resets(self) -> ResetRepository: ...

    @property
    def recoveries(self) -> RecoveryRepository: ...

    @property
    def devices(self) -> TrustedDeviceRepository: ...


class Store(Protocol):
    def transaction(self, write: bool = True) -> AbstractContextManager[Transaction]:
        """All-or-nothing unit of work; ``write=False`` for read-only work."""
        ...

    def single_statement_read(self, work: Callable[[Transaction], T]) -> T:
        """``work(tx)``'s result, for ``work`` that runs exactly one statement:
        the hottest reads (the session check). That statement sees one
        consistent state, so where the database reads every statement from a
        snapshot of its own, no transaction is opened around it. Two
        statements in it may see two states: use :meth:`transaction` for
        anything more. ``work`` may be called twice (a read made again on
        another connection): it must change nothing."""
        ...

    async def run(self, work: Callable[[], T], *, slow: bool = False, write: bool = True) -> T:
        """Run ``work`` (blocking code that opens its own transactions) from
        async code, on the event loop or in the thread pool, whichever the
        database makes safe and cheap; the store knows which, its callers do not.

        ``slow=True``: work that must never hold the event loop (argon2
        hashing): always the thread pool. Otherwise ``write=True`` (a short
        write) runs on the loop only if no writer can make it wait (SQLite with
        its writer lock free this moment, held while it runs), and
        ``write=False`` (a short read) runs on the loop where a read never
        waits (SQLite's write-ahead log). Everything else, and every call on a
        database across the network (PostgreSQL), goes to the thread pool.
        """
        ...


class DuplicateEmail(Exception):
    """Raised by storage when a write would give two users of one account one
    email, or two users with a password (sign-in identities) one email."""
