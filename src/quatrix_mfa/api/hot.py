"""The two calls every sign-in and every request of every application make,
answered without FastAPI's router and dependency solver (issue 14).

``GET /api/1.0/profile`` is what an application calls to check a session,
``POST /api/1.0/session/login`` the second factor of every login. On FastAPI
0.165 its router matches the included routers one after another and solves
a route's nested dependencies per request: ~300 µs of CPU around ~100 µs of
work for the session check (bench/analysis.md, "The hot path"). Here an
exact (method, path) lookup calls the route's own endpoint with the same
dependencies, built by the same functions: the route itself, its OpenAPI
entry and every other route stay FastAPI's.

:class:`SessionCheck` answers ``GET /profile`` in front of the whole
middleware stack, FastAPI's and ours, whose layers had come to cost more
than the check itself; it does what they do for this request by calling
their own code (``Recorder.begin``/``finish``, as Observe, ``no_store``, the header
limit, the app's exception handlers). :class:`HotRoutes` answers the second
factor inside our middleware (its body passes the body limits first). Any
other method or spelling of the path (a trailing slash), and any body that is
not plain valid JSON of the route's model, goes to FastAPI as before, which
answers it as it always has.

Errors are mapped by the app's own exception handlers (``api/errors.py``),
looked up as Starlette's exception middleware looks them up: an answer from
here is the same bytes FastAPI's route gives.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from quatrix_mfa.api import deps
from quatrix_mfa.api.caching import no_store
from quatrix_mfa.api.limits import headers_too_large, replaying
from quatrix_mfa.api.observing import Recorder
from quatrix_mfa.api.routes import auth, profile
from quatrix_mfa.api.schemas import SessionLoginPostResp

# None: not for this shortcut, FastAPI's route answers (with the body replayed).
Handler = Callable[[Request], Awaitable[Response | None]]
ExceptionHandler = Callable[[Request, Exception], Any]


async def _get_profile(request: Request) -> Response:
    """``GET /profile``: the route's endpoint with its dependency, ``full_context``."""
    token = request.headers.get(deps.TOKEN_HEADER)
    ctx = await deps.full_context(await deps.session_context(request, token))
    return await profile.get_profile(ctx)


async def _login_second_factor(request: Request) -> Response | None:
    """``POST /session/login``: the route's endpoint with its body and its
    dependency, ``session_context``, when the body is a JSON object its model
    takes; FastAPI's route answers anything else (its 400s stay its own)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return None
    # As FastAPI reads a JSON body (json.loads, then the model on the object),
    # but from UTF-8 text only: json.loads would take UTF-16 and -32 bytes too,
    # which BodyLimit's nesting check cannot read. Whatever fails here is
    # FastAPI's route's to refuse, as it always has.
    try:
        body = SessionLoginPostResp.model_validate(json.loads((await request.body()).decode()))
    except (ValueError, ValidationError, RecursionError):  # UnicodeError is a ValueError
        return None
    token = request.headers.get(deps.TOKEN_HEADER)
    ctx = await deps.session_context(request, token)
    return await auth.login_second_factor(request, body, ctx, request.app.state.core)


class _Template:
    """What ``api/observing.route_of`` reads of a matched route: its template."""

    def __init__(self, path: str) -> None:
        self.path_format = path


class SessionCheck:
    """``GET /api/1.0/profile`` in front of the whole middleware stack."""

    def __init__(
        self,
        app: ASGIApp,
        path: str,
        recorder: Recorder,
        exception_handlers: Mapping[Any, ExceptionHandler],
    ) -> None:
        self.app = app
        self.path = path
        self.template = _Template(path)
        self.recorder = recorder
        self.exception_handlers = exception_handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != self.path
            or scope["method"] != "GET"
            or headers_too_large(scope["headers"])  # refused the long way, by BodyLimit
        ):
            await self.app(scope, receive, send)
            return
        seen = self.recorder.begin(scope)
        scope["route"] = self.template  # the request's metrics and log line name it
        request = Request(scope, receive)
        unexpected: Exception | None = None
        try:
            try:
                response = await _get_profile(request)
            except Exception as error:
                handler = handler_for(self.exception_handlers, error)
                if handler is None:  # the server-error middleware's 500, raised on after
                    handler, unexpected = self.exception_handlers[Exception], error
                response = await handler(request, error)
            # As NoStore and Observe add them, in that order.
            response.raw_headers = [*no_store(response.raw_headers), seen.echoed]
            seen.status = response.status_code
            await response(scope, receive, send)
        finally:
            self.recorder.finish(scope, seen)
        if unexpected is not None:
            raise unexpected  # logged by the server, as every route's unexpected error


class HotRoutes:
    """Exact-match dispatch for the second factor, in front of FastAPI's router."""

    def __init__(
        self,
        app: ASGIApp,
        prefix: str,
        exception_handlers: Mapping[Any, ExceptionHandler],
    ) -> None:
        self.app = app
        self.handlers: dict[tuple[str, str], tuple[Handler, _Template]] = {
            ("POST", f"{prefix}/session/login"): (
                _login_second_factor,
                _Template(f"{prefix}/session/login"),
            ),
        }
        # The app's handlers, read at each error: FastAPI fills them in after
        # the middleware is declared.
        self.exception_handlers = exception_handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = (
            self.handlers.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if found is None:
            await self.app(scope, receive, send)
            return
        handler, template = found
        scope["route"] = template  # the request's metrics and log line name it
        request = Request(scope, receive)
        try:
            response = await handler(request)
        except Exception as error:
            mapped = handler_for(self.exception_handlers, error)
            if mapped is None:
                raise  # the server-error middleware's 500, as on every route
            response = await mapped(request, error)
        if response is None:
            del scope["route"]  # FastAPI's router names the route it finds
            # Starlette keeps what the handler read on the request: the app reads it again.
            body: bytes | None = getattr(request, "_body", None)
            await self.app(scope, receive if body is None else replaying(body, receive), send)
            return
        await response(scope, receive, send)


def handler_for(
    handlers: Mapping[Any, ExceptionHandler], error: Exception
) -> ExceptionHandler | None:
    """The app's handler of ``error`` in Starlette's order: the most specific
    class with a handler, except the catch-all ``Exception``, which is the
    outer server-error middleware's (None)."""
    for cls in type(error).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None
