"""Request-scoped helpers: the core and the request context (client address,
the caller's session) that every route hands to core."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel

from quatrix_mfa import observe
from quatrix_mfa.core.context import Channel, Context, Core
from quatrix_mfa.core.errors import AddressNotAllowed, NotAuthenticated
from quatrix_mfa.core.sessions import (
    Caller,
    authenticate,
    read_session,
    settle_needs_write,
    settle_session,
)
from quatrix_mfa.forwarding import request_client

# The header that carries the session token, in and out (DESIGN.md, "Sessions").
TOKEN_HEADER = "X-Auth-Token"  # noqa: S105 - a header name

# Declared so the OpenAPI document names the spec's api_key scheme.
_token_header = APIKeyHeader(name=TOKEN_HEADER, scheme_name="api_key", auto_error=False)


# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def``
# dependency in the thread pool, and each such hop costs more than the work.
async def get_core(request: Request) -> Core:
    core: Core = request.app.state.core
    return core


def client_addr(request: Request) -> str | None:
    """The client's address (``quatrix_mfa/forwarding.py``)."""
    return request_client(request)


def _context(request: Request, core: Core, caller: Caller | None) -> Context:
    """The one place the API edge builds core's request context."""
    return Context(caller, client_addr(request), core.clock.now(), Channel.API)


async def anonymous_context(request: Request) -> Context:
    """A request that needs no session (login with a password, reset links)."""
    return _context(request, request.app.state.core, None)


async def session_context(
    request: Request, token: Annotated[str | None, Depends(_token_header)]
) -> Context:
    """Any live session, pending or full.

    The read goes where the store says a short read costs least (on the event
    loop on SQLite, in the thread pool on PostgreSQL: ``Store.run``). The rare
    write (an expired session deleted, last-seen written once a minute) always
    goes to the thread pool.
    """
    core: Core = request.app.state.core
    addr = client_addr(request)
    read = functools.partial(read_session, core, token, addr)
    caller = await core.store.run(read, write=False)
    if settle_needs_write(core, caller):
        caller = await core.store.run(functools.partial(settle_session, core, caller), slow=True)
    observe.note_user(caller.user.id)  # the request's log line names its user
    return Context(caller, addr, core.clock.now(), Channel.API)


async def full_context(ctx: Annotated[Context, Depends(session_context)]) -> Context:
    """A full session; a pending one gets 401 code 10."""
    ctx.signed_in.require_full()
    return ctx


def optional_session_context(request: Request, core: Core) -> Context:
    """The caller's session if the request carries a live one, else none:
    for the few calls that anyone may make and a session changes."""
    token = request.headers.get(TOKEN_HEADER)
    addr = client_addr(request)
    caller = None
    if token:
        try:
            caller = authenticate(core, token, addr)
        except (NotAuthenticated, AddressNotAllowed):
            caller = None
        else:
            observe.note_user(caller.user.id)
    return Context(caller, addr, core.clock.now(), Channel.API)


CoreDep = Annotated[Core, Depends(get_core)]
AnonymousDep = Annotated[Context, Depends(anonymous_context)]
SessionDep = Annotated[Context, Depends(session_context)]
FullDep = Annotated[Context, Depends(full_context)]
# The raw X-Auth-Token, for a route that authenticates itself (declared in the OpenAPI).
TokenDep = Annotated[str | None, Depends(_token_header)]


class _RenderedJSON(JSONResponse):
    """A JSON answer whose body pydantic has already serialized."""

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else super().render(content)


def reply(
    model: BaseModel | list[Any], status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    """Serialize a response model (or a list of them) without nulls."""
    if isinstance(model, list):
        content: Any = [m.model_dump(mode="json", exclude_none=True) for m in model]
        return JSONResponse(content, status_code=status, headers=headers)
    # Straight to JSON bytes in pydantic's serializer: the same compact text
    # as JSONResponse's json.dumps, without the dict in between (~7 µs an
    # answer, bench/analysis.md).
    body = model.__pydantic_serializer__.to_json(model, exclude_none=True)
    return _RenderedJSON(body, status_code=status, headers=headers)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries: each status answers with an ErrorModel."""
    from quatrix_mfa.api.schemas import ErrorModel

    return {status: {"model": ErrorModel} for status in statuses}
