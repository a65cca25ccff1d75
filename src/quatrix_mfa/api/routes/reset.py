"""Mailed links (no session needed): password reset, and the confirmation
of a changed email (our extension, outside the spec's paths)."""

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
    ProfileRemoveMfaResp,
    ResetPasswordMetadataResp,
    ResetPasswordRequestReq,
    ResetPasswordRequestResp,
    ResetPasswordResetReq,
)
from quatrix_mfa.core import admin, email_change, reset

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


@router.post(
    "/confirm-email/{id}",
    response_model=ProfileRemoveMfaResp,
    tags=["Email Change"],
    responses=ERRORS,
)
def confirm_email(id: str, core: CoreDep, ctx: AnonymousDep) -> JSONResponse:
    """Make the new address of a pending email change the user's email (the
    link mailed there): 401 code 1 if unknown, used or expired; 400 code 31
    if another user signs in with it by now."""
    email_change.confirm(core, ctx, id)
    return reply(ProfileRemoveMfaResp())


LINK_PATH = "/reset-password/{id}"
EMAIL_LINK_PATH = "/confirm-email/{id}"
# The page that cancels a lost-device recovery (web), as mailed.
RECOVERY_LINK_PATH = "/recover-mfa/cancel/{id}"


def link_builder(public_url: str, path: str = LINK_PATH) -> Callable[[str], str]:
    """How mailed links are spelled: ``<public url>/reset-password/<id>``, the
    page ``web/passwords.py`` serves, or ``path`` (``EMAIL_LINK_PATH``: the
    page of ``web/email_change.py``); core is given this, and knows no URL."""
    base = public_url.rstrip("/")

    def link(link_id: str) -> str:
        return base + path.format(id=link_id)

    return link
