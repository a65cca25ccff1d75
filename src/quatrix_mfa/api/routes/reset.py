"""Password reset by mailed link (no session needed)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from quatrix_mfa.api.deps import AddrDep, CoreDep, error_responses, reply
from quatrix_mfa.api.schemas import (
    IdResp,
    JobResp,
    ResetPasswordMetadataResp,
    ResetPasswordRequestReq,
    ResetPasswordRequestResp,
    ResetPasswordResetReq,
)
from quatrix_mfa.core import admin, reset, sessions
from quatrix_mfa.core.errors import NotAuthenticated

router = APIRouter(tags=["Password Reset"])
ERRORS = error_responses(400, 401)


@router.post(
    "/reset-password/request",
    response_model=ResetPasswordRequestResp,
    responses={202: {"model": JobResp}, **error_responses(400)},
)
def request_reset(
    body: ResetPasswordRequestReq, request: Request, core: CoreDep, addr: AddrDep
) -> JSONResponse:
    """Anyone: 200 with the emails as given, whether they exist or not.
    An administrator's session: 202 with a job id."""
    token = request.headers.get("x-auth-token")
    caller = None
    if token:
        try:
            caller = sessions.authenticate(core, token)
        except NotAuthenticated:
            caller = None
    if caller is not None and caller.user.super_admin and not caller.session.pending:
        admin.require_admin(caller)
        reset.request_reset(core, body.email, addr)
        return reply(JobResp(job_id=str(uuid.uuid4())), 202)
    return reply(ResetPasswordRequestResp(email=reset.request_reset(core, body.email, addr)))


@router.get(
    "/reset-password/metadata/{id}", response_model=ResetPasswordMetadataResp, responses=ERRORS
)
def reset_metadata(id: str, core: CoreDep) -> JSONResponse:
    return reply(ResetPasswordMetadataResp(id=reset.metadata(core, id)))


@router.post("/reset-password/reset/{id}", response_model=IdResp, responses=ERRORS)
def reset_password(
    id: str, body: ResetPasswordResetReq, core: CoreDep, addr: AddrDep
) -> JSONResponse:
    return reply(IdResp(id=reset.reset_password(core, id, body.password, addr)))


link_router = APIRouter(include_in_schema=False)


@link_router.get("/reset-password/{id}", response_class=PlainTextResponse)
def reset_link(id: str, core: CoreDep) -> PlainTextResponse:
    """Where mailed links point: how to set the password with this link's id."""
    reset.metadata(core, id)
    base = core.links.public_url.rstrip("/")
    return PlainTextResponse(
        "Set your password with:\n\n"
        f"  curl -X POST {base}/api/1.0/reset-password/reset/{id} \\\n"
        "       -H 'Content-Type: application/json' -d '{\"password\": \"YOUR NEW PASSWORD\"}'\n"
    )
