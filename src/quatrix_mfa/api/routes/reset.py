"""Password reset by mailed link (no session needed)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from quatrix_mfa.api.deps import (
    AnonymousDep,
    CoreDep,
    error_responses,
    optional_session_context,
    reply,
)
from quatrix_mfa.api.schemas import (
    IdResp,
    JobResp,
    ResetPasswordMetadataResp,
    ResetPasswordRequestReq,
    ResetPasswordRequestResp,
    ResetPasswordResetReq,
)
from quatrix_mfa.core import admin, reset

router = APIRouter(tags=["Password Reset"])
ERRORS = error_responses(400, 401)


@router.post(
    "/reset-password/request",
    response_model=ResetPasswordRequestResp,
    responses={202: {"model": JobResp}, **error_responses(400)},
)
def request_reset(body: ResetPasswordRequestReq, request: Request, core: CoreDep) -> JSONResponse:
    """Anyone: 200 with the emails as given, whether they exist or not.
    An administrator's session: 202 with a job id."""
    ctx = optional_session_context(request, core)
    caller = ctx.caller
    if caller is not None and caller.user.super_admin and not caller.session.pending:
        admin.require_admin(ctx)
        reset.request_reset(core, ctx, body.email)
        return reply(JobResp(job_id=str(uuid.uuid4())), 202)
    return reply(ResetPasswordRequestResp(email=reset.request_reset(core, ctx, body.email)))


@router.get(
    "/reset-password/metadata/{id}", response_model=ResetPasswordMetadataResp, responses=ERRORS
)
def reset_metadata(id: str, core: CoreDep, ctx: AnonymousDep) -> JSONResponse:
    return reply(ResetPasswordMetadataResp(id=reset.metadata(core, ctx, id)))


@router.post("/reset-password/reset/{id}", response_model=IdResp, responses=ERRORS)
def reset_password(
    id: str, body: ResetPasswordResetReq, core: CoreDep, ctx: AnonymousDep
) -> JSONResponse:
    return reply(IdResp(id=reset.reset_password(core, ctx, id, body.password)))


LINK_PATH = "/reset-password/{id}"


def link_builder(public_url: str) -> Callable[[str], str]:
    """How mailed links are spelled: ``<public url>/reset-password/<id>``, the
    page ``web/passwords.py`` serves (core is given this, and knows no URL)."""
    base = public_url.rstrip("/")

    def link(reset_id: str) -> str:
        return base + LINK_PATH.format(id=reset_id)

    return link
