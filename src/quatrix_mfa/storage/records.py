"""Sessions, throttle counters, audit rows, the mail outbox and reset links."""

from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    LABEL_STYLE_TABLENAME_PLUS_COL,
    Connection,
    Table,
    and_,
    bindparam,
    case,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from quatrix_mfa.core.model import (
    Account,
    AuditEvent,
    Mail,
    ResetRequest,
    SessionRecord,
    Step,
    ThrottleState,
    User,
)
from quatrix_mfa.storage.prepared import Prepared
from quatrix_mfa.storage.repositories import (
    SqlAccountRepository,
    SqlUserRepository,
    UserRow,
    chunks,
    delete_some,
)
from quatrix_mfa.storage.tables import (
    accounts,
    audit_log,
    outbox,
    password_resets,
    sessions,
    throttle,
    users,
)


def _session(row: Any) -> SessionRecord:
    steps = tuple(Step(s) for s in row.steps.split(",") if s)
    return SessionRecord(
        row.token_hash,
        row.user_id,
        row.created,
        row.last_seen,
        row.expires_at,
        steps,
        row.failures,
    )


_WITH_OWNER = Prepared(
    select(sessions, users, accounts)
    .join(users, users.c.id == sessions.c.user_id)
    .join(accounts, accounts.c.id == users.c.account_id)
    .where(sessions.c.token_hash == bindparam("token_hash"))
    .set_label_style(LABEL_STYLE_TABLENAME_PLUS_COL)
)
# The joined row, cut back into its three tables by position (the columns
# come in table order): cheaper than a lookup per column on every request.
_SessionRow = namedtuple("_SessionRow", [c.name for c in sessions.c])  # type: ignore[misc]
_AccountRow = namedtuple("_AccountRow", [c.name for c in accounts.c])  # type: ignore[misc]
_SESSION_PART = slice(0, len(sessions.c))
_USER_PART = slice(len(sessions.c), len(sessions.c) + len(users.c))
_ACCOUNT_PART = slice(len(sessions.c) + len(users.c), None)
# Built once and run on the driver's cursor, like the user and factor
# statements (see repositories.py).
_ADD_SESSION = Prepared(insert(sessions))
_DELETE_SESSION = Prepared(
    delete(sessions).where(sessions.c.token_hash == bindparam("b_token_hash"))
)
_TOUCH_SESSION = Prepared(
    update(sessions)
    .where(sessions.c.token_hash == bindparam("b_token_hash"))
    .values(last_seen=bindparam("b_now"))
)
_SESSION_FAILURE = Prepared(
    update(sessions)
    .where(sessions.c.token_hash == bindparam("b_token_hash"))
    .values(failures=sessions.c.failures + 1)
    .returning(sessions.c.failures)
)
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
_ADD_AUDIT = Prepared(insert(audit_log))


class SqlSessionRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, session: SessionRecord) -> None:
        _ADD_SESSION.rowcount(
            self.conn,
            {
                "token_hash": session.token_hash,
                "user_id": session.user_id,
                "created": session.created,
                "last_seen": session.last_seen,
                "expires_at": session.expires_at,
                "steps": ",".join(s.value for s in session.steps),
                "failures": session.failures,
            },
        )

    def get(self, token_hash: str) -> SessionRecord | None:
        row = self.conn.execute(select(sessions).where(sessions.c.token_hash == token_hash)).first()
        return None if row is None else _session(row)

    def get_with_owner(self, token_hash: str) -> tuple[SessionRecord, User, Account] | None:
        # One statement instead of three: every authenticated request comes here.
        row = _WITH_OWNER.first(self.conn, {"token_hash": token_hash})
        if row is None:
            return None
        return (
            _session(_SessionRow._make(row[_SESSION_PART])),
            SqlUserRepository.row_to_user(UserRow._make(row[_USER_PART])),
            SqlAccountRepository.row_to_account(_AccountRow._make(row[_ACCOUNT_PART])),
        )

    def touch(self, token_hash: str, now: float) -> None:
        _TOUCH_SESSION.rowcount(self.conn, {"b_token_hash": token_hash, "b_now": now})

    def delete(self, token_hash: str) -> bool:
        return _DELETE_SESSION.rowcount(self.conn, {"b_token_hash": token_hash}) == 1

    def add_failure(self, token_hash: str) -> int:
        row = _SESSION_FAILURE.first(self.conn, {"b_token_hash": token_hash})
        return int(row[0]) if row else 0

    def close_for_users(self, user_ids: Sequence[str], keep: str | None = None) -> int:
        closed = 0
        for part in chunks(user_ids):
            query = delete(sessions).where(sessions.c.user_id.in_(part))
            if keep is not None:
                query = query.where(sessions.c.token_hash != keep)
            closed += self.conn.execute(query).rowcount
        return closed

    def purge_expired(self, now: float, idle_seconds: float, limit: int = 1000) -> int:
        idle = and_(sessions.c.steps == "", sessions.c.last_seen <= now - idle_seconds)
        expired = or_(sessions.c.expires_at <= now, idle)
        return delete_some(self.conn, sessions, sessions.c.token_hash, expired, limit)


@dataclass(frozen=True)
class _ThrottleStatements:
    """The throttle's upserts, built once per dialect (``ON CONFLICT`` differs)."""

    add_failure: Prepared
    attempt: Prepared

    @classmethod
    @functools.cache
    def of(cls, dialect: str) -> _ThrottleStatements:
        insert_of = postgresql.insert if dialect == "postgresql" else sqlite.insert
        now = bindparam("b_now", type_=throttle.c.updated.type)
        fresh = insert_of(throttle).values(
            key=bindparam("b_key"), failures=1, blocked_until=0.0, updated=now
        )
        # One upsert with RETURNING: concurrent failures each see their own count.
        add_failure = fresh.on_conflict_do_update(
            index_elements=[throttle.c.key],
            set_={"failures": throttle.c.failures + 1, "updated": now},
        ).returning(throttle.c.failures)
        # The same, but a blocked key is left as it is (the attempt is refused).
        blocked = throttle.c.blocked_until > now
        attempt = fresh.on_conflict_do_update(
            index_elements=[throttle.c.key],
            set_={
                "failures": case((blocked, throttle.c.failures), else_=throttle.c.failures + 1),
                "updated": case((blocked, throttle.c.updated), else_=now),
            },
        ).returning(throttle.c.failures, throttle.c.blocked_until, throttle.c.updated)
        return cls(Prepared(add_failure), Prepared(attempt))


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
            rows = prepared.rows(self.conn, {f"b_key_{i}": key for i, key in enumerate(keys)})
        else:
            query = select(throttle).where(throttle.c.key.in_(list(keys)))
            rows = [tuple(row) for row in self.conn.execute(query)]
        return [ThrottleState(*row) for row in rows]

    def add_failure(self, key: str, now: float) -> int:
        params = {"b_key": key, "b_now": now}
        (failures,) = self.statements.add_failure.rows(self.conn, params)[0]
        return int(failures)

    def attempt(self, key: str, now: float) -> ThrottleState:
        # PostgreSQL holds the upserted row's lock until commit, so racing
        # attempts queue here and each sees the count and block before it.
        params = {"b_key": key, "b_now": now}
        failures, blocked_until, updated = self.statements.attempt.rows(self.conn, params)[0]
        return ThrottleState(key, failures, blocked_until, updated)

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


class SqlAuditRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def append(self, event: AuditEvent) -> None:
        _ADD_AUDIT.rowcount(
            self.conn,
            {
                "at": event.at,
                "event": event.event,
                "outcome": event.outcome,
                "actor_id": event.actor_id,
                "target_id": event.target_id,
                "account_id": event.account_id,
                "client_addr": event.client_addr,
                "detail": event.detail,
            },
        )

    def list(self, target_id: str | None = None, limit: int = 1000) -> list[AuditEvent]:
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if target_id is not None:
            query = query.where(
                or_(audit_log.c.target_id == target_id, audit_log.c.actor_id == target_id)
            )
        return [
            AuditEvent(
                at=r.at,
                event=r.event,
                outcome=r.outcome,
                actor_id=r.actor_id,
                target_id=r.target_id,
                account_id=r.account_id,
                client_addr=r.client_addr,
                detail=dict(r.detail),
                id=r.id,
            )
            for r in reversed(list(self.conn.execute(query)))
        ]


def _mail(row: Any) -> Mail:
    return Mail(
        to=row.to_addr,
        subject=row.subject,
        body=row.body,
        created=row.created,
        id=row.id,
        attempts=row.attempts,
        sent_at=row.sent_at,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
    )


class SqlOutboxRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def enqueue(self, mail: Mail) -> None:
        self.conn.execute(
            insert(outbox).values(
                to_addr=mail.to,
                subject=mail.subject,
                body=mail.body,
                created=mail.created,
                attempts=0,
                next_attempt_at=mail.next_attempt_at,
            )
        )

    def claim_due(self, now: float, lease: float, limit: int) -> list[Mail]:
        free = or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now)
        due = (
            select(outbox.c.id)
            .where(outbox.c.sent_at.is_(None), outbox.c.next_attempt_at <= now, free)
            .order_by(outbox.c.id)
            .limit(limit)
        )
        claimed: list[Mail] = []
        for mail_id in list(self.conn.execute(due).scalars()):
            # Claim each row with a conditional UPDATE: two senders never share one.
            won = self.conn.execute(
                update(outbox)
                .where(outbox.c.id == mail_id, free)
                .values(claimed_until=now + lease, attempts=outbox.c.attempts + 1)
            ).rowcount
            if won:
                row = self.conn.execute(select(outbox).where(outbox.c.id == mail_id)).one()
                claimed.append(_mail(row))
        return claimed

    def mark_sent(self, mail_id: int, now: float) -> None:
        self.conn.execute(
            update(outbox).where(outbox.c.id == mail_id).values(sent_at=now, last_error=None)
        )

    def mark_failed(self, mail_id: int, next_attempt_at: float, error: str) -> None:
        self.conn.execute(
            update(outbox)
            .where(outbox.c.id == mail_id)
            .values(
                next_attempt_at=next_attempt_at,
                claimed_until=None,
                last_error=error[:1000],
            )
        )

    def list(self, limit: int = 1000) -> list[Mail]:
        query = select(outbox).order_by(outbox.c.id).limit(limit)
        return [_mail(r) for r in self.conn.execute(query)]

    def purge_sent(self, before: float, limit: int) -> int:
        sent = and_(outbox.c.sent_at.is_not(None), outbox.c.sent_at < before)
        return delete_some(self.conn, outbox, outbox.c.id, sent, limit)


class SqlResetRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, reset: ResetRequest) -> None:
        self.conn.execute(
            insert(password_resets).values(
                id_hash=reset.id_hash,
                user_id=reset.user_id,
                created=reset.created,
                expires_at=reset.expires_at,
                used_at=reset.used_at,
            )
        )

    def add_if_user(self, reset: ResetRequest, mail: Mail) -> bool:
        # INSERT ... SELECT FROM users: one statement per table whether or not the
        # user exists, so a request for an unknown email costs what a known one does.
        def values(table: Table, row: dict[str, Any]) -> Any:
            columns = [bindparam(k, v, type_=table.c[k].type) for k, v in row.items()]
            return insert(table).from_select(
                list(row), select(*columns).where(users.c.id == reset.user_id)
            )

        link: dict[str, Any] = {"id_hash": reset.id_hash, "user_id": reset.user_id}
        link |= {"created": reset.created, "expires_at": reset.expires_at}
        added = self.conn.execute(values(password_resets, link)).rowcount == 1
        letter: dict[str, Any] = {"to_addr": mail.to, "subject": mail.subject, "body": mail.body}
        letter |= {"created": mail.created, "attempts": 0, "next_attempt_at": mail.next_attempt_at}
        self.conn.execute(values(outbox, letter))
        return added

    def get(self, id_hash: str) -> ResetRequest | None:
        row = self.conn.execute(
            select(password_resets).where(password_resets.c.id_hash == id_hash)
        ).first()
        if row is None:
            return None
        return ResetRequest(row.id_hash, row.user_id, row.created, row.expires_at, row.used_at)

    def consume(self, id_hash: str, now: float) -> bool:
        result = self.conn.execute(
            update(password_resets)
            .where(
                password_resets.c.id_hash == id_hash,
                password_resets.c.used_at.is_(None),
                password_resets.c.expires_at > now,
            )
            .values(used_at=now)
        )
        return result.rowcount == 1

    def latest_for_user(self, user_id: str) -> ResetRequest | None:
        row = self.conn.execute(
            select(password_resets)
            .where(password_resets.c.user_id == user_id)
            .order_by(password_resets.c.created.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        return ResetRequest(row.id_hash, row.user_id, row.created, row.expires_at, row.used_at)

    def delete_for_user(self, user_id: str) -> None:
        self.conn.execute(delete(password_resets).where(password_resets.c.user_id == user_id))

    def purge(self, now: float, limit: int) -> int:
        table = password_resets
        dead = or_(table.c.expires_at <= now, table.c.used_at.is_not(None))
        return delete_some(self.conn, table, table.c.id_hash, dead, limit)
