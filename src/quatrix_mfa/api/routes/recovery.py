"""Lost-device recovery (issue 12, item 3): started on a pending login,
cancelled by its mailed link, approved or cancelled by an administrator."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from quatrix_mfa.api.deps import (
    AnonymousDep,
    CoreDep,
    FullDep,
    SessionDep,
    error_responses,
    reply,
)
from quatrix_mfa.api.schemas import ProfileRemoveMfaResp, RecoverMfaResp, UserIdsReq
from quatrix_mfa.core import mail, mfa_recovery

router = APIRouter(tags=["MFA"])
ERRORS = error_responses(400, 401, 403)


@router.post(
    "/session/recover-mfa", status_code=202, response_model=RecoverMfaResp, responses=ERRORS
)
def recover_mfa(ctx: SessionDep, core: CoreDep) -> JSONResponse:
    """Start a recovery on a login waiting for a 2FA code or a PIN: 202 with
    the time from which the next password login removes the factors."""
    ready_at = mfa_recovery.start(core, ctx)
    return reply(RecoverMfaResp(ready_at=mail.moment(ready_at)), 202)


@router.post(
    "/recover-mfa/cancel/{recovery_id}", response_model=ProfileRemoveMfaResp, responses=ERRORS
)
def cancel_by_link(recovery_id: str, ctx: AnonymousDep, core: CoreDep) -> JSONResponse:
    """The mailed link's id cancels the recovery (401 code 1 if unknown or closed)."""
    mfa_recovery.cancel_by_link(core, ctx, recovery_id)
    return reply(ProfileRemoveMfaResp())


@router.post("/user/recover-mfa/approve", response_model=ProfileRemoveMfaResp, responses=ERRORS)
def approve(body: UserIdsReq, ctx: FullDep, core: CoreDep) -> JSONResponse:
    """Let the users' open recoveries complete at their next password login."""
    mfa_recovery.approve(core, ctx, body.ids)
    return reply(ProfileRemoveMfaResp())


@router.post("/user/recover-mfa/cancel", response_model=ProfileRemoveMfaResp, responses=ERRORS)
def cancel(body: UserIdsReq, ctx: FullDep, core: CoreDep) -> JSONResponse:
    """Cancel the users' open recoveries."""
    mfa_recovery.cancel(core, ctx, body.ids)
    return reply(ProfileRemoveMfaResp())
