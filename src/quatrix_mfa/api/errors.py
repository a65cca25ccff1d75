"""The one place where errors become the spec's ErrorModel."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from quatrix_mfa.api.deps import TOKEN_HEADER
from quatrix_mfa.api.observing import Recorder
from quatrix_mfa.core import audit
from quatrix_mfa.core.context import Core
from quatrix_mfa.core.crypto import KeyUnavailable
from quatrix_mfa.core.errors import ErrorCode, QuatrixError, StoreUnavailable, TooManyAttempts
from quatrix_mfa.core.sessions import SESSION_FIELD
from quatrix_mfa.observe import REQUEST_ID_HEADER

log = logging.getLogger(__name__)

HTTP_STATUS = {
    ErrorCode.NOT_AUTHENTICATED: 401,
    ErrorCode.PARAMETER: 400,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.PENDING_SESSION: 401,
    ErrorCode.WRONG_CODE: 401,
    ErrorCode.FACTOR_FORCED: 400,
    ErrorCode.TOO_MANY_ATTEMPTS: 429,
    ErrorCode.NO_PENDING_ENROLLMENT: 400,
    ErrorCode.FACTOR_NOT_ACTIVE: 400,
    ErrorCode.ADDRESS_NOT_ALLOWED: 403,
    ErrorCode.EMAIL_TAKEN: 400,
    ErrorCode.WEAK_PASSWORD: 400,
}


# Core names a field by what it is; clients know some of them by their header.
_FIELD_NAMES = {SESSION_FIELD: TOKEN_HEADER}


def error_model(code: int, msg: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The spec's ErrorModel ``{code, msg, details?}``: the one way every error
    answer's body is built (also the ones sent before the app runs)."""
    body: dict[str, Any] = {"code": code, "msg": msg}
    if details:
        body["details"] = {_FIELD_NAMES.get(name, name): why for name, why in details.items()}
    return body


def error_response(
    status: int,
    code: int,
    msg: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_model(code, msg, details), status_code=status, headers=headers)


async def _quatrix(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, QuatrixError)
    headers = (
        {"Retry-After": str(error.retry_after)} if isinstance(error, TooManyAttempts) else None
    )
    return error_response(
        HTTP_STATUS[error.code], int(error.code), error.msg, error.details, headers
    )


async def _validation(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    details: dict[str, str] = {}
    for problem in error.errors():
        location = [str(p) for p in problem.get("loc", ()) if p not in ("body",)]
        field = ".".join(location) or "body"
        # Only pydantic's message: the offending input may be a secret.
        details.setdefault(field, str(problem.get("msg", "invalid")))
    return error_response(400, int(ErrorCode.PARAMETER), "Parameter error", details)


async def _http(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = ErrorCode.NOT_FOUND if error.status_code == 404 else ErrorCode.PARAMETER
    msg = "Not found" if error.status_code == 404 else str(error.detail)
    return error_response(
        error.status_code, int(code), msg, headers=getattr(error, "headers", None)
    )


# Key ids already logged by this process: a missing key fails every request
# that needs it, and one line per key id says it (the audit trail has each).
_LOGGED_KEYS: set[str] = set()
KEY_RETRY_SECONDS = 5


async def _key_unavailable(request: Request, error: Exception) -> JSONResponse:
    """A secret under a key this node lacks: 503 (another node, or this one
    once its key file is copied, can answer), never a 500."""
    assert isinstance(error, KeyUnavailable)
    if error.key_id not in _LOGGED_KEYS:
        _LOGGED_KEYS.add(error.key_id)
        log.error(
            "key %s: %s; copy the deployment's key file to this node", error.key_id, error.reason
        )
    core = getattr(request.app.state, "core", None)
    if core is not None:
        await run_in_threadpool(_audit_key_unavailable, core, error)
    return error_response(
        503,
        -1,
        "Temporarily unavailable on this node, try again",
        headers={"Retry-After": str(KEY_RETRY_SECONDS)},
    )


def _audit_key_unavailable(core: Core, error: KeyUnavailable) -> None:
    try:
        with core.store.transaction() as tx:
            audit.record(
                tx,
                core.clock.now(),
                audit.KEY_UNAVAILABLE,
                audit.FAILURE,
                target=error.owner_id,
                key_id=error.key_id,
            )
    except Exception as failure:  # the answer is 503 either way
        log.warning("audit of a missing key failed: %s", type(failure).__name__)


# When the database went away (monotonic time of the first failure) and how
# many requests met it since: logged once per outage, not once per request
# (the measured 5 s outage left 1,661 tracebacks in the log).
_OUTAGE: dict[str, float] = {}


def unavailable_response(error: StoreUnavailable) -> JSONResponse:
    """503 ErrorModel with Retry-After for a database that cannot answer now
    (also used by the pages for their API-like paths)."""
    note_outage(error)
    return error_response(
        503,
        -1,
        "Temporarily unavailable, try again",
        headers={"Retry-After": str(StoreUnavailable.RETRY_AFTER_SECONDS)},
    )


def note_outage(error: StoreUnavailable) -> None:
    """One log line when an outage starts, one more at most every minute."""
    now = time.monotonic()
    if now - _OUTAGE.get("logged", -1e9) >= 60:
        _OUTAGE["logged"] = now
        log.error("database unavailable (%s): answering 503 until it is back", error.reason)


async def _unavailable(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StoreUnavailable)
    return unavailable_response(error)


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    # Logged by type and place only: the exception text could hold request data.
    log.error("unhandled %s", type(error).__name__, exc_info=False)
    # Starlette answers this one from outside every middleware of ours, so
    # the headers they add to every other answer are added here.
    headers = {"Cache-Control": "no-store"}
    request_id = Recorder.request_id(request.scope)
    if request_id is not None:
        headers[REQUEST_ID_HEADER] = request_id
    return error_response(500, -1, "Internal error", headers=headers)


def install(app: FastAPI) -> None:
    # The handlers are ``async def``: Starlette runs a plain ``def`` handler in
    # the thread pool, and that hop cost twice the rest of an error answer.
    app.add_exception_handler(QuatrixError, _quatrix)
    app.add_exception_handler(KeyUnavailable, _key_unavailable)
    app.add_exception_handler(StoreUnavailable, _unavailable)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
    _document_400_not_422(app)


def _document_400_not_422(app: FastAPI) -> None:
    """Bad input answers 400 (``_validation``); FastAPI would document a 422.

    A body over the limit answers 413 (``api.limits.BodyLimit``, every method
    but GET, HEAD and OPTIONS), so that is documented too.
    """
    build = app.openapi
    error_model = {"$ref": "#/components/schemas/ErrorModel"}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()  # FastAPI caches it in app.openapi_schema; edited in place
        for operations in schema.get("paths", {}).values():
            for method, operation in operations.items():
                responses = operation.get("responses", {})
                if method not in ("get", "head", "options"):
                    responses.setdefault(
                        "413",
                        {
                            "description": "Request body too large",
                            "content": {"application/json": {"schema": error_model}},
                        },
                    )
                if responses.pop("422", None) is not None:
                    responses.setdefault(
                        "400",
                        {
                            "description": "Parameter error",
                            "content": {"application/json": {"schema": error_model}},
                        },
                    )
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
