"""Sessions, and the one joined read of a session with its user and account
that every authenticated request makes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    LABEL_STYLE_TABLENAME_PLUS_COL,
    Connection,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from quatrix_mfa import observe
from quatrix_mfa.core.model import Account, SessionRecord, User
from quatrix_mfa.core.ports import UserQuery
from quatrix_mfa.storage.prepared import Prepared
from quatrix_mfa.storage.rows import (
    account_reader,
    chunks,
    enrolled_kinds,
    session_reader,
    user_reader,
)
from quatrix_mfa.storage.tables import accounts, sessions, users
from quatrix_mfa.storage.users import matching

_SESSION = session_reader()

# One statement instead of three. Its columns are labelled table_column, and
# each record is read from the columns of its own table by those names. A
# session made under another credential epoch than its user's is closed: it
# is not found, in this same statement (core/credentials.py).
_WITH_OWNER = Prepared(
    select(sessions, users, enrolled_kinds(users.c.id).label("users_enrolled"), accounts)
    .join(users, users.c.id == sessions.c.user_id)
    .join(accounts, accounts.c.id == users.c.account_id)
    .where(
        sessions.c.token_hash == bindparam("token_hash"),
        sessions.c.epoch == users.c.credential_epoch,
    )
    .set_label_style(LABEL_STYLE_TABLENAME_PLUS_COL)
)
_OWNER_SESSION = session_reader("sessions_")
_OWNER_USER = user_reader("users_")
_OWNER_ACCOUNT = account_reader("accounts_")
# Built once and run on the driver's cursor, like the user and factor
# statements (see users.py).
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


class SqlSessionRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        # Sessions this transaction opened, pending or full: counted once it commits.
        self.opened: list[str] = []
        # Sessions the background purge deleted because they had expired (no
        # request came to find them so): counted as closed once it commits.
        self.purged_expired = 0

    def add(self, session: SessionRecord) -> None:
        self.opened.append("pending" if session.steps else "full")
        # A login's request has no session yet: its log line names the user it opens one for.
        observe.note_user(session.user_id)
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
                "epoch": session.epoch,
                "kind": session.kind.value,
                "auth_time": session.auth_time,
                "factors": ",".join(session.factors),
                "client_addr": session.client_addr,
            },
        )

    def get(self, token_hash: str) -> SessionRecord | None:
        row = self.conn.execute(select(sessions).where(sessions.c.token_hash == token_hash)).first()
        return None if row is None else _SESSION(row)

    def get_with_owner(self, token_hash: str) -> tuple[SessionRecord, User, Account] | None:
        # Every authenticated request comes here.
        row = _WITH_OWNER.first(self.conn, {"token_hash": token_hash})
        if row is None:
            return None
        return _OWNER_SESSION(row), _OWNER_USER(row), _OWNER_ACCOUNT(row)

    def touch(self, token_hash: str, now: float) -> None:
        _TOUCH_SESSION.rowcount(self.conn, {"b_token_hash": token_hash, "b_now": now})

    def delete(self, token_hash: str) -> bool:
        return _DELETE_SESSION.rowcount(self.conn, {"b_token_hash": token_hash}) == 1

    def add_failure(self, token_hash: str) -> int:
        row = _SESSION_FAILURE.first(self.conn, {"b_token_hash": token_hash})
        return int(row.failures) if row else 0

    def close_for_users(self, user_ids: Sequence[str], keep: str | None = None) -> int:
        closed = 0
        for part in chunks(user_ids):
            query = delete(sessions).where(sessions.c.user_id.in_(part))
            if keep is not None:
                query = query.where(sessions.c.token_hash != keep)
            closed += self.conn.execute(query).rowcount
        return closed

    def of_user(self, user_id: str) -> list[SessionRecord]:
        query = (
            select(sessions)
            .where(sessions.c.user_id == user_id)
            .order_by(sessions.c.created, sessions.c.token_hash)
        )
        return [_SESSION(row) for row in self.conn.execute(query)]

    def delete_of_user(self, user_id: str, token_hash: str) -> bool:
        # The owner is part of the condition: a hash of someone else's session
        # deletes nothing, whoever asks.
        query = delete(sessions).where(
            sessions.c.token_hash == token_hash, sessions.c.user_id == user_id
        )
        return bool(self.conn.execute(query).rowcount == 1)

    def addresses_in_account(self, account_id: str) -> list[tuple[str, str, str | None]]:
        query = (
            select(sessions.c.token_hash, sessions.c.user_id, sessions.c.client_addr)
            .join(users, users.c.id == sessions.c.user_id)
            .where(users.c.account_id == account_id)
        )
        return [(r.token_hash, r.user_id, r.client_addr) for r in self.conn.execute(query)]

    def claim(self, token_hash: str, now: float, until: float) -> bool:
        free = or_(sessions.c.busy_until.is_(None), sessions.c.busy_until <= now)
        query = (
            update(sessions)
            .where(sessions.c.token_hash == token_hash, free)
            .values(busy_until=until)
        )
        return bool(self.conn.execute(query).rowcount == 1)

    def release(self, token_hash: str) -> None:
        self.conn.execute(
            update(sessions).where(sessions.c.token_hash == token_hash).values(busy_until=None)
        )

    def close(self, token_hashes: Sequence[str]) -> int:
        closed = 0
        for part in chunks(token_hashes):
            closed += self.conn.execute(
                delete(sessions).where(sessions.c.token_hash.in_(part))
            ).rowcount
        return closed

    def count_open(self, account_id: str, query: UserQuery, now: float, idle_since: float) -> int:
        live = or_(sessions.c.steps != "", sessions.c.last_seen > idle_since)
        counted = (
            select(func.count())
            .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
            .where(
                users.c.account_id == account_id,
                sessions.c.expires_at > now,
                sessions.c.epoch == users.c.credential_epoch,
                live,
                *matching(query),
            )
        )
        return int(self.conn.execute(counted).scalar_one())

    def restamp(self, token_hash: str, epoch: int) -> None:
        self.conn.execute(
            update(sessions).where(sessions.c.token_hash == token_hash).values(epoch=epoch)
        )

    def expired(self, now: float, idle_seconds: float, limit: int = 1000) -> list[str]:
        query = select(sessions.c.token_hash).where(_expired(now, idle_seconds)).limit(limit)
        return [row.token_hash for row in self.conn.execute(query)]

    def delete_expired(self, token_hashes: Sequence[str], now: float, idle_seconds: float) -> int:
        count = 0
        for part in chunks(token_hashes):
            query = delete(sessions).where(
                sessions.c.token_hash.in_(part), _expired(now, idle_seconds)
            )
            count += self.conn.execute(query).rowcount
        self.purged_expired += count
        return count


def _expired(now: float, idle_seconds: float) -> Any:
    """Past its absolute expiry, or a full session idle too long.

    A session of an older credential epoch than its user's is not looked for:
    the change that moved the epoch deleted the user's sessions in the same
    transaction, any that raced it is refused on every read (``_WITH_OWNER``)
    and goes at its expiry. Looking for them cost a look-up of the user for
    every session, a 1.7 s scan a minute at 1,000,000 users (bench/analysis.md).
    """
    idle = and_(sessions.c.steps == "", sessions.c.last_seen <= now - idle_seconds)
    return or_(sessions.c.expires_at <= now, idle)
