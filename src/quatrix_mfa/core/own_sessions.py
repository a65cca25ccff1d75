"""A user's own open sessions: list them, sign one out, sign out all others.

Sessions are stored by the keyed hash of their token only. A page needs a
name for each that it may show and post back: its *handle*, a keyed hash of
that hash under a purpose of its own. It opens nothing (it is neither the
token nor the stored hash), and it is looked up only among the caller's own
sessions, so no handle reaches another user's session.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from quatrix_mfa.core import audit
from quatrix_mfa.core.context import Context, Core
from quatrix_mfa.core.credentials import credentials_changed
from quatrix_mfa.core.errors import NotFound
from quatrix_mfa.core.model import SessionKind, SessionRecord
from quatrix_mfa.core.sessions import is_expired


@dataclass(frozen=True)
class OpenSession:
    """One open session as its owner sees it."""

    handle: str
    kind: SessionKind
    client_addr: str | None
    started: float  # when its sign-in began (``auth_time``)
    last_seen: float
    pending: bool  # a sign-in still waiting for its second factor
    current: bool  # the session this request came with


def handle_of(core: Core, token_hash: str) -> str:
    """The session's non-secret name for pages and forms."""
    return core.tokens.hash("session-handle", token_hash)


def _live(core: Core, ctx: Context) -> list[SessionRecord]:
    caller = ctx.signed_in
    with core.store.transaction(write=False) as tx:
        stored = tx.sessions.of_user(caller.user.id)
    # Closed by a change of credentials or expired, but not purged yet: not open.
    epoch = caller.user.credential_epoch
    return [s for s in stored if s.epoch == epoch and not is_expired(core, s, ctx.now)]


def list_own(core: Core, ctx: Context) -> list[OpenSession]:
    """The caller's open sessions, the most recently used first."""
    caller = ctx.signed_in
    caller.require_full()
    found = [
        OpenSession(
            handle=handle_of(core, s.token_hash),
            kind=s.kind,
            client_addr=s.client_addr,
            started=s.auth_time or s.created,
            last_seen=s.last_seen,
            pending=s.pending,
            current=s.token_hash == caller.token_hash,
        )
        for s in _live(core, ctx)
    ]
    return sorted(found, key=lambda s: (not s.current, -s.last_seen))


def close_own(core: Core, ctx: Context, handle: str) -> bool:
    """Sign out the caller's session named ``handle``; True if it was the
    caller's own current session. A handle that names none of the caller's
    open sessions (another user's, a closed one, made up) is 404 code 4."""
    caller, now = ctx.signed_in, ctx.now
    caller.require_full()
    target = None
    for session in _live(core, ctx):
        # Every candidate compared in constant time; the first match wins.
        # As bytes: compare_digest refuses a str that is not ASCII (a forged handle).
        mine = handle_of(core, session.token_hash).encode()
        if hmac.compare_digest(mine, handle.encode("utf-8", "surrogatepass")) and target is None:
            target = session.token_hash
    if target is None:
        raise NotFound("No such session of yours")
    with core.store.transaction() as tx:
        # The owner is part of the delete: only ever one of the caller's rows.
        if not tx.sessions.delete_of_user(caller.user.id, target):
            raise NotFound("No such session of yours")
        who = ctx.actor()
        who.record(tx, now, audit.SESSION_CLOSED, "signed_out_by_owner", target=caller.user.id)
    return target == caller.token_hash


def close_others(core: Core, ctx: Context) -> None:
    """Sign out every other session of the caller, the caller's own stays.

    Done as a change of credentials (the epoch moves on, the caller's session
    with it): a sign-in that is between its password and its session row
    right now is dead on arrival too, on every node. No mail: the person did
    it themself, on this page.
    """
    caller, now = ctx.signed_in, ctx.now
    caller.require_full()
    with core.store.transaction() as tx:
        user = tx.users.get(caller.user.id)  # locks the row on PostgreSQL
        assert user is not None
        # Audited there: the sessions closed, and why.
        credentials_changed(tx, user, "signed_out_others_by_owner", now, keep=caller.token_hash)
