"""What one request is, for its log line, its metrics and its audit rows.

Plain Python (no web framework): the HTTP middleware (api/observing.py) sets
it, storage reads the request id into audit rows, the session dependency adds
the user id when it knows it. A context variable carries it: anyio's worker
threads run with a copy of the context, so the same mutable object is seen
there and changes made on a thread reach the middleware's log line.
"""

from __future__ import annotations

import contextvars
import re
import secrets
from dataclasses import dataclass

REQUEST_ID_HEADER = "X-Request-Id"
# A proxy's or client's id is kept when it is plainly an id: short, and of
# characters that cannot break a log line or a header (no CR/LF, no quotes).
_WELL_FORMED = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass
class RequestInfo:
    """The request in flight: its id and, once a session names one, its user."""

    request_id: str
    user_id: str | None = None


_current: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    "quatrix_mfa_request", default=None
)


def request_id_from(header: str | None) -> str:
    """``header`` when well-formed (1-64 of ``[A-Za-z0-9._-]``), else a new random id."""
    if header is not None and _WELL_FORMED.fullmatch(header):
        return header
    return secrets.token_hex(16)


def begin(request_id: str) -> tuple[RequestInfo, contextvars.Token[RequestInfo | None]]:
    """Start a request's record; hand the token to :func:`end`."""
    info = RequestInfo(request_id)
    return info, _current.set(info)


def end(token: contextvars.Token[RequestInfo | None]) -> None:
    _current.reset(token)


def current() -> RequestInfo | None:
    """The request being served in this context, if any (None in the CLI, background)."""
    return _current.get()


def note_user(user_id: str) -> None:
    """The request acts for this user (its log line names them)."""
    info = _current.get()
    if info is not None:
        info.user_id = user_id
