"""Session lifecycle: opening, authenticating, closing.

The token is a random UUID4 (122 bits); only its keyed hash is stored, so a
copy of the database holds no usable session.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from quatrix_mfa.core import audit, ipallow, policy
from quatrix_mfa.core.context import Context, Core
from quatrix_mfa.core.errors import AddressNotAllowed, NotAuthenticated, PendingSession
from quatrix_mfa.core.model import Account, SessionKind, SessionRecord, Step, User
from quatrix_mfa.core.ports import Transaction

# The name core gives the session token in a ParameterError's details; each
# edge names it as its clients know it (the API: its X-Auth-Token header).
SESSION_FIELD = "session"

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass
class Caller:
    """The authenticated session behind a request."""

    token: str
    token_hash: str
    session: SessionRecord
    user: User
    account: Account

    @property
    def pending_step(self) -> Step | None:
        return self.session.steps[0] if self.session.steps else None

    def require_full(self) -> None:
        if self.session.pending:
            raise PendingSession()


def canonical_token(token: str | None) -> str | None:
    """A token (or any id we issue) is a UUID in its hyphenated hex form, in
    either case; anything else cannot be one. ``uuid.UUID`` alone would also
    take braces, "urn:uuid:", stray dashes, and whatever ``int(x, 16)``
    takes: "0x", "_", "+", spaces, and other scripts' digits."""
    if not token or not _UUID.fullmatch(token):
        return None
    return token.lower()


def token_hash(core: Core, token: str) -> str:
    return core.tokens.hash("session", token)


def open_session(
    core: Core,
    tx: Transaction,
    user: User,
    steps: tuple[Step, ...],
    now: float,
    *,
    proven: tuple[str, ...],
    addr: str | None,
    auth_time: float | None = None,
    kind: SessionKind = SessionKind.API,
) -> str:
    """Store a new session for ``user`` and return its token (the only clear copy).

    The session records how it was made: ``proven``, the factors proven so far
    in order, and ``auth_time``, when the login began (now, unless this session
    carries on from an earlier one). Whatever rotates it, a full session ends
    ``max_seconds`` after ``auth_time``; a pending one lives ``pending_seconds``
    and never past that. It is made under ``user``'s current credential epoch,
    and remembers ``addr``, the client address it was opened from.
    """
    token = str(uuid.uuid4())
    began = now if auth_time is None else auth_time
    expires_at = began + core.sessions.max_seconds
    if steps:
        expires_at = min(expires_at, now + core.sessions.pending_seconds)
    tx.sessions.add(
        SessionRecord(
            token_hash=token_hash(core, token),
            user_id=user.id,
            created=now,
            last_seen=now,
            expires_at=expires_at,
            steps=steps,
            epoch=user.credential_epoch,
            kind=kind,
            auth_time=began,
            factors=proven,
            client_addr=addr,
        )
    )
    return token


def reopen_session(
    core: Core, tx: Transaction, ctx: Context, user: User, *, proven: str | None
) -> str:
    """A new session in place of the caller's (the id rotates), carrying on its
    authentication record: the same kind and ``auth_time`` (so the same
    absolute expiry), plus ``proven`` if a factor was proven meanwhile."""
    session = ctx.signed_in.session
    factors = session.factors + ((proven,) if proven else ())
    return open_session(
        core,
        tx,
        user,
        (),
        ctx.now,
        proven=factors,
        addr=ctx.addr,
        auth_time=session.auth_time,
        kind=session.kind,
    )


def is_expired(core: Core, session: SessionRecord, now: float) -> bool:
    if now >= session.expires_at:
        return True
    return not session.pending and now >= session.last_seen + core.sessions.idle_seconds


def authenticate(
    core: Core, raw_token: str | None, addr: str | None, *, keepalive: bool = False
) -> Caller:
    """Resolve a session token, used from the client address ``addr``, to a
    live session; or raise NotAuthenticated (code 1), or AddressNotAllowed
    (403 code 20) when the account's IP allow-list does not hold ``addr``."""
    return settle_session(core, read_session(core, raw_token, addr), keepalive=keepalive)


def read_session(core: Core, raw_token: str | None, addr: str | None) -> Caller:
    """The read half of :func:`authenticate`: the session of ``raw_token`` as
    stored, not yet checked for expiry. One read, no write; the caller must
    pass the result through :func:`settle_session` before trusting it.

    The account's IP allow-list holds for every request a session makes, not
    only for the password step: a session opened inside the list, or a login
    begun there, is refused from outside it (403 code 20). Checked here,
    before the session's last-seen time is written, so a refused request does
    not keep the session alive; the account comes with the session's one read.
    """
    token = canonical_token(raw_token)
    # Only the exact id we issued: no other spelling (upper case, no dashes,
    # braces, urn:uuid:) of it is a session, so an altered token never works.
    if token is None or token != raw_token:
        raise NotAuthenticated()
    hashed = token_hash(core, token)
    # One statement: the session, its user and their account.
    found = core.store.single_statement_read(lambda tx: tx.sessions.get_with_owner(hashed))
    if found is None or not found[1].is_active:
        raise NotAuthenticated()
    session, user, account = found
    require_allowed_address(account, addr)
    return Caller(token, hashed, session, user, account)


def require_allowed_address(account: Account, addr: str | None) -> None:
    """403 code 20 unless the account's IP allow-list (when on) holds ``addr``."""
    if not ipallow.admits(account, addr):
        raise AddressNotAllowed()


def _settlement(core: Core, caller: Caller, now: float, keepalive: bool) -> str | None:
    """What settling the caller's session writes: "expire" (delete it),
    "touch" (its last-seen time, at most once per ``touch_every``), or
    nothing. A full session of a user the account's 2FA deadline caught
    without 2FA expires at once, on whichever node it comes to."""
    session = caller.session
    if is_expired(core, session, now):
        return "expire"
    if not session.pending and policy.past_enroll_by(caller.account, caller.user, now):
        return "expire"
    stale = now - session.last_seen >= core.sessions.touch_every
    return "touch" if not session.pending and (keepalive or stale) else None


def settle_needs_write(core: Core, caller: Caller, *, keepalive: bool = False) -> bool:
    """Whether :func:`settle_session` will write. No I/O."""
    return _settlement(core, caller, core.clock.now(), keepalive) is not None


def settle_session(core: Core, caller: Caller, *, keepalive: bool = False) -> Caller:
    """The write half of :func:`authenticate`: an expired session is deleted
    (NotAuthenticated); a live one has its last-seen time written when due."""
    now = core.clock.now()
    action = _settlement(core, caller, now, keepalive)
    if action == "expire":
        with core.store.transaction() as tx:
            if tx.sessions.delete(caller.token_hash):
                _record_closed(tx, caller, now, "expired")
        raise NotAuthenticated("Session expired")
    if action == "touch":
        with core.store.transaction() as tx:
            tx.sessions.touch(caller.token_hash, now)
        caller.session.last_seen = now
    return caller


def count_wrong_code(core: Core, tx: Transaction, ctx: Context) -> bool:
    """A wrong code on the caller's pending session counts against it; the
    ``max_code_failures``-th closes it (DESIGN.md: five wrong codes close a
    pending session), audited as such. A full session counts nothing here.

    False if the session was gone before this code counted (closed by the
    codes sent beside it): the answer is then a closed session's, not
    "wrong code", since no code can be right on it any more."""
    caller = ctx.signed_in
    if not caller.session.pending:
        return True
    failures = tx.sessions.add_failure(caller.token_hash)
    if failures == 0:
        return False
    if failures >= core.sessions.max_code_failures and tx.sessions.delete(caller.token_hash):
        _record_closed(tx, caller, ctx.now, "too_many_wrong_codes", addr=ctx.addr)
    return True


def logout(core: Core, caller: Caller) -> None:
    now = core.clock.now()
    with core.store.transaction() as tx:
        tx.sessions.delete(caller.token_hash)
        _record_closed(tx, caller, now, "logout", actor=caller.user.id)


def _record_closed(
    tx: Transaction,
    caller: Caller,
    now: float,
    reason: str,
    actor: str | None = None,
    addr: str | None = None,
) -> None:
    """Audit that ``caller``'s own session closed, and why."""
    audit.record(
        tx,
        now,
        audit.SESSION_CLOSED,
        reason,
        actor=actor,
        target=caller.user.id,
        account=caller.account.id,
        addr=addr,
    )
