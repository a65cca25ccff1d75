"""What an administrator reads: the account's users, found and paged, and its
audit trail, filtered and paged; both newest-state reads, never a write.

Paging is by keyset (a seek): each page ends with a cursor naming its last
row, and the next page starts after it on an index. An offset would read and
skip every earlier row, so page 1,000 of 100,000 users would cost a thousand
pages; a seek costs the same at any depth. Cursors are opaque to the edges.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from quatrix_mfa.core import audit
from quatrix_mfa.core.admin import require_admin
from quatrix_mfa.core.context import Context, Core
from quatrix_mfa.core.errors import ParameterError
from quatrix_mfa.core.model import TOTP_KIND, Account, AuditEvent, User
from quatrix_mfa.core.ports import AuditQuery, UserQuery
from quatrix_mfa.core.sessions import canonical_token
from quatrix_mfa.core.text import has_control, normalize_email

MAX_PAGE = 200
MAX_SEARCH = 254
MAX_CURSOR = 600
STATUSES = ("A", "D")
OUTCOMES = (audit.SUCCESS, audit.FAILURE, audit.DENIED)
EVENTS = tuple(
    sorted(
        value
        for name, value in vars(audit).items()
        if name.isupper() and isinstance(value, str) and "." in value
    )
)


class TwoFactorState(StrEnum):
    """The 2FA states an administrator filters users by. They overlap: a
    forced user is also active or has enrollment still to do."""

    NONE = "none"  # 2FA neither on nor required
    ACTIVE = "active"  # required or on, and a TOTP key enrolled
    FORCED = "forced"  # the user may not turn it off (an admin or the account forces it)
    ENROLL = "enroll"  # required or on, no key yet: enrolls at the next sign-in


@dataclass(frozen=True)
class UserFilter:
    """What the admin asked for: ``text`` in the email or name, a status
    (``A``/``D``), a 2FA state; None or '' is any."""

    text: str | None = None
    status: str | None = None
    two_factor: str | None = None


R = TypeVar("R")


@dataclass(frozen=True)
class Page(Generic[R]):
    """One page of rows, and the cursor of the next (None on the last page)."""

    rows: list[R]
    next_cursor: str | None


def _clean_text(name: str, text: str | None, limit: int) -> str | None:
    if not text or not text.strip():
        return None
    if len(text) > limit or has_control(text):
        raise ParameterError.field(name, f"at most {limit} characters, no control characters")
    return text.strip()


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise ParameterError.field("limit", f"1 to {MAX_PAGE}")
    return limit


def user_query(account: Account, wanted: UserFilter) -> UserQuery | None:
    """The storage query for ``wanted`` in ``account``; None when nobody can
    match (no one is without 2FA while the account forces it). The one place
    the 2FA states meet the policy of core/policy.py."""
    text = _clean_text("q", wanted.text, MAX_SEARCH)
    status = wanted.status or None
    if status is not None and status not in STATUSES:
        raise ParameterError.field("status", "A or D")
    query = UserQuery(text=text.lower() if text else None, status=status)
    if not wanted.two_factor:
        return query
    try:
        state = TwoFactorState(wanted.two_factor)
    except ValueError:
        raise ParameterError.field("two_factor", "none, active, forced or enroll") from None
    # policy.needs_totp: chosen by the user or forced on them, or the account forces it.
    required = None if account.force_2fa else True
    if state is TwoFactorState.NONE:
        return None if account.force_2fa else _with(query, chosen=False)
    if state is TwoFactorState.FORCED:
        return query if account.force_2fa else _with(query, forced=True)
    enrolled = state is TwoFactorState.ACTIVE
    return _with(query, chosen=required, kind=TOTP_KIND, has_kind=enrolled)


def _with(query: UserQuery, **changes: object) -> UserQuery:
    return dataclasses.replace(query, **changes)  # type: ignore[arg-type]


def _encode(value: object) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> object:
    if len(cursor) > MAX_CURSOR:
        raise ValueError("too long")
    padded = cursor + "=" * (-len(cursor) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def _user_cursor(cursor: str | None) -> tuple[str, str] | None:
    if not cursor:
        return None
    try:
        decoded = _decode(cursor)
    except (ValueError, UnicodeError, binascii.Error):
        decoded = None
    match decoded:
        case [str(email), str(user_id)] if len(email) <= 254 and len(user_id) <= 64:
            return email, user_id
    raise ParameterError.field("after", "not a page of this list")


def find_users(
    core: Core, ctx: Context, wanted: UserFilter, after: str | None = None, limit: int = 50
) -> Page[User]:
    """The account's users matching ``wanted``, by email, ``limit`` at a time
    from the cursor ``after`` (the ``next_cursor`` of the page before)."""
    caller = require_admin(ctx)
    query = user_query(caller.account, wanted)
    start, limit = _user_cursor(after), _limit(limit)
    if query is None:
        return Page([], None)
    with core.store.transaction(write=False) as tx:
        users = tx.users.find(caller.account.id, query, start, limit + 1)
    more = len(users) > limit
    users = users[:limit]
    return Page(users, user_cursor(users[-1]) if more else None)


def user_cursor(user: User) -> str:
    """The cursor of the page that starts after ``user``."""
    return _encode([user.email, user.id])


def emails_of(core: Core, ctx: Context, ids: set[str]) -> dict[str, str]:
    """The emails of those of ``ids`` that are users of the caller's account
    (an audit page names people, not ids); others are left out."""
    caller = require_admin(ctx)
    wanted = [i for i in ids if canonical_token(i) is not None]
    if not wanted:
        return {}
    with core.store.transaction(write=False) as tx:
        return {u.id: u.email for u in tx.users.in_account(caller.account.id, wanted)}


def clock_drift(core: Core, ctx: Context, ids: Sequence[str]) -> dict[str, int]:
    """Of ``ids`` (users of the caller's account), those whose last accepted
    TOTP code was a step off (-1 or +1): a phone clock drifting, shown to the
    administrator before it drifts out of the window (issue 13)."""
    caller = require_admin(ctx)
    if not ids:
        return {}
    with core.store.transaction(write=False) as tx:
        ours = {u.id for u in tx.users.in_account(caller.account.id, list(ids))}
        return tx.credentials.drift_offsets(sorted(ours))


@dataclass(frozen=True)
class AuditFilter:
    """``user`` is an email or a user id of the account; ``since``/``until``
    bound the time (seconds since the epoch, ``until`` exclusive)."""

    user: str | None = None
    event: str | None = None
    outcome: str | None = None
    since: float | None = None
    until: float | None = None


def _audit_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    if len(cursor) > 19 or not cursor.isascii() or not cursor.isdigit():
        raise ParameterError.field("before", "not a page of this list")
    return int(cursor)


def _audit_user(core: Core, account: Account, user: str | None) -> str | None:
    """The id the audit filter names; '' (matching no row) when the email or
    id is no user of the account."""
    text = _clean_text("user", user, 254)
    if text is None:
        return None
    user_id = canonical_token(text)
    if user_id is not None:
        return user_id
    with core.store.transaction(write=False) as tx:
        found = tx.users.by_email(normalize_email(text))
    return found.id if found is not None and found.account_id == account.id else ""


def find_audit(
    core: Core, ctx: Context, wanted: AuditFilter, before: str | None = None, limit: int = 50
) -> Page[AuditEvent]:
    """The account's audit rows matching ``wanted``, newest first, ``limit``
    at a time from the cursor ``before``."""
    caller = require_admin(ctx)
    start, limit = _audit_cursor(before), _limit(limit)
    event = wanted.event or None
    if event is not None and event not in EVENTS:
        raise ParameterError.field("event", "not an event of the audit trail")
    outcome = _clean_text("outcome", wanted.outcome, 32)
    if wanted.since is not None and wanted.until is not None and wanted.until <= wanted.since:
        raise ParameterError.field("until", "after the start")
    user_id = _audit_user(core, caller.account, wanted.user)
    if user_id == "":
        return Page([], None)
    query = AuditQuery(user_id, event, outcome, wanted.since, wanted.until)
    with core.store.transaction(write=False) as tx:
        rows = tx.audit.find(caller.account.id, query, start, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, str(rows[-1].id) if more else None)
