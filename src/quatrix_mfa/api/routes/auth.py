"""Auth: login (password, then second factor), keepalive, logout."""

from __future__ import annotations

import base64
import binascii
import functools

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from quatrix_mfa.api.deps import (
    TOKEN_HEADER,
    AnonymousDep,
    CoreDep,
    SessionDep,
    TokenDep,
    error_responses,
    reply,
)
from quatrix_mfa.api.schemas import SessionLoginPostResp, SessionLoginResp
from quatrix_mfa.core import auth, devices, mail, sessions
from quatrix_mfa.core.auth import LoginResult
from quatrix_mfa.core.errors import NotAuthenticated
from quatrix_mfa.core.text import has_control

router = APIRouter(tags=["Auth"])
# While 2FA is forced with a grace period: when a user without 2FA must have it.
ENROLL_BY_HEADER = "Mfa-Enroll-By"
# A trusted device's token (issue 13): given by a POST with remember_device,
# shown by a later GET with Basic auth to skip the second factor.
DEVICE_HEADER = "X-Device-Token"
ERRORS = error_responses(401, 429)


def _login_reply(result: LoginResult) -> JSONResponse:
    headers = {TOKEN_HEADER: result.token}
    if result.enroll_by is not None:
        headers[ENROLL_BY_HEADER] = mail.moment(result.enroll_by)
    if result.device_token is not None:
        headers[DEVICE_HEADER] = result.device_token
    if result.step is None:
        return reply(SessionLoginResp(session_id=result.token), 200, headers)
    headers["Mfa-Code"] = result.step.value
    return reply(SessionLoginResp(session_id=result.token), 207, headers)


def parse_basic(header: str) -> tuple[str, str]:
    """``Authorization: Basic base64(email:password)`` (RFC 7617 §2); 401 if malformed."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded or len(encoded) > 2048:
        raise NotAuthenticated("Expected Basic credentials")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise NotAuthenticated("Malformed Basic credentials") from None
    email, colon, password = decoded.partition(":")
    # RFC 7617 §2: no control characters in the user-id. No stored email has
    # one, and a NUL must not reach the database (PostgreSQL refuses it: 500).
    if not colon or not email or has_control(email):
        raise NotAuthenticated("Malformed Basic credentials")
    return email, password


@router.get(
    "/session/login",
    response_model=SessionLoginResp,
    responses={
        207: {"model": SessionLoginResp, "description": "MFA required; see Mfa-Code"},
        **ERRORS,
    },
)
def login(request: Request, core: CoreDep, ctx: AnonymousDep) -> JSONResponse:
    """Basic auth opens a session (200 full, 207 pending); an X-Auth-Token reports on one.
    With Basic auth, a good X-Device-Token of that user skips the second factor."""
    header = request.headers.get("authorization")
    if header:
        email, password = parse_basic(header)
        device = request.headers.get(DEVICE_HEADER)
        return _login_reply(
            auth.login_with_password(core, ctx, email, password, device_token=device)
        )
    caller = sessions.authenticate(core, request.headers.get(TOKEN_HEADER), ctx.addr)
    return _login_reply(auth.session_status(core, caller))


@router.post(
    "/session/login",
    response_model=SessionLoginResp,
    tags=["MFA"],
    responses={
        207: {"model": SessionLoginResp, "description": "Next factor required; see Mfa-Code"},
        **error_responses(400),
        **ERRORS,
    },
)
async def login_second_factor(
    request: Request, body: SessionLoginPostResp, ctx: SessionDep, core: CoreDep
) -> JSONResponse:
    """The second factor on a pending session: a new session id on success.
    With ``remember_device`` true on the last factor, also an X-Device-Token."""
    remember = None
    if body.remember_device:
        remember = devices.label_for(request.headers.get("user-agent"))
    check = functools.partial(
        auth.second_factor, core, ctx, body.auth_type, body.code, remember=remember
    )
    # The store decides where it runs: a PIN's argon2 never on the event loop.
    slow = auth.is_slow_check(core, ctx, body.code)
    return _login_reply(await core.store.run(check, slow=slow))


@router.get("/session/keepalive", responses=ERRORS)
def keepalive(token: TokenDep, core: CoreDep, ctx: AnonymousDep) -> JSONResponse:
    caller = sessions.authenticate(core, token, ctx.addr, keepalive=True)
    caller.require_full()
    return JSONResponse({})


@router.get("/session/logout", responses=ERRORS)
def logout(ctx: SessionDep, core: CoreDep) -> JSONResponse:
    sessions.logout(core, ctx.signed_in)
    return JSONResponse({})
