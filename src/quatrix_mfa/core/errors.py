"""The one numeric error catalog of the contract (DESIGN.md, "Errors").

Core code raises :class:`QuatrixError` subclasses; the HTTP layer turns them
into the spec's ``ErrorModel`` in a single place.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ErrorCode(IntEnum):
    NOT_AUTHENTICATED = 1
    PARAMETER = 2
    FORBIDDEN = 3
    NOT_FOUND = 4
    PENDING_SESSION = 10
    WRONG_CODE = 11
    FACTOR_FORCED = 12
    TOO_MANY_ATTEMPTS = 13
    NO_PENDING_ENROLLMENT = 14
    FACTOR_NOT_ACTIVE = 15
    ADDRESS_NOT_ALLOWED = 20
    EMAIL_TAKEN = 31
    WEAK_PASSWORD = 32


class QuatrixError(Exception):
    """A refusal the client is told about; never carries a secret."""

    code: ErrorCode = ErrorCode.PARAMETER
    default_msg = "Parameter error"

    def __init__(self, msg: str | None = None, details: dict[str, Any] | None = None) -> None:
        self.msg = msg or self.default_msg
        self.details = details
        super().__init__(self.msg)


class NotAuthenticated(QuatrixError):
    code = ErrorCode.NOT_AUTHENTICATED
    default_msg = "Not authenticated"


class ParameterError(QuatrixError):
    code = ErrorCode.PARAMETER
    default_msg = "Parameter error"

    @classmethod
    def field(cls, name: str, problem: str) -> ParameterError:
        return cls(f"Invalid parameter: {name}", {name: problem})


class ReauthenticationRequired(ParameterError):
    """A sensitive change on a session whose sign-in is not recent: the
    current password must come with it (``details`` names the field)."""

    default_msg = "Confirm your current password first"


class Forbidden(QuatrixError):
    code = ErrorCode.FORBIDDEN
    default_msg = "Not allowed"


class SignedInByDevice(Forbidden):
    """A session opened through a trusted device (core/devices.py) asked to
    change its user's second factors or recovery codes: the device stood in
    for those factors, so it may not replace them."""

    default_msg = "This sign-in used a trusted device: sign in with your second factor to change it"


class NotFound(QuatrixError):
    code = ErrorCode.NOT_FOUND
    default_msg = "Not found"


class PendingSession(QuatrixError):
    code = ErrorCode.PENDING_SESSION
    default_msg = "Session is pending: finish the second factor first"


class WrongCode(QuatrixError):
    code = ErrorCode.WRONG_CODE
    default_msg = "Wrong code"


class FactorForced(QuatrixError):
    code = ErrorCode.FACTOR_FORCED
    default_msg = "The factor is forced and cannot be removed"

    def __init__(
        self, msg: str | None = None, details: dict[str, Any] | None = None, *, by: str = ""
    ) -> None:
        super().__init__(msg, details)
        # Who forces it (core.policy.BY_ADMIN or BY_ACCOUNT), for an edge to say why.
        self.by = by


class TooManyAttempts(QuatrixError):
    code = ErrorCode.TOO_MANY_ATTEMPTS
    default_msg = "Too many attempts"

    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, retry_after)
        super().__init__(f"Too many attempts, retry after {self.retry_after} seconds")


class NoPendingEnrollment(QuatrixError):
    code = ErrorCode.NO_PENDING_ENROLLMENT
    default_msg = "No pending enrollment: call /profile/2fa/generate first"


class FactorNotActive(QuatrixError):
    code = ErrorCode.FACTOR_NOT_ACTIVE
    default_msg = "That factor is not active"


class AddressNotAllowed(QuatrixError):
    code = ErrorCode.ADDRESS_NOT_ALLOWED
    default_msg = "Client address is not in the account's IP allow-list"


class EmailTaken(QuatrixError):
    code = ErrorCode.EMAIL_TAKEN
    default_msg = "Email is already taken"


class WeakPassword(QuatrixError):
    """``reason`` names the rule broken (``too_long``, ``too_short``,
    ``common``, ``service_name``, ``same_as_email``), so the pages can say it
    in the reader's language; ``msg`` is the API's English."""

    code = ErrorCode.WEAK_PASSWORD
    default_msg = "Password too weak"

    def __init__(self, msg: str | None = None, reason: str = "weak") -> None:
        super().__init__(msg)
        self.reason = reason


class StoreUnavailable(Exception):
    """The database cannot answer now: PostgreSQL stopped or unreachable, its
    pool exhausted, a statement over its time limit, SQLite's disk full or
    read-only. Nothing was committed by the unit of work that met it (its
    transaction rolled back), so the client may simply try again: the HTTP
    layer answers 503 with ``Retry-After`` (RFC 9110 §15.6.4, §10.2.3), never 500.
    ``reason`` is a short word for the log, never the driver's text (it can
    hold a statement's parameters)."""

    RETRY_AFTER_SECONDS = 5

    def __init__(self, reason: str) -> None:
        super().__init__(f"database unavailable: {reason}")
        self.reason = reason
