"""Profile: the caller's own data, password and factors."""

from __future__ import annotations

import base64
import io

import segno
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from quatrix_mfa.api.deps import TOKEN_HEADER, CoreDep, FullDep, SessionDep, error_responses, reply
from quatrix_mfa.api.schemas import (
    ProfileRemoveMfaReq,
    ProfileRemoveMfaResp,
    ProfileResp,
    ProfileSetMfaReq,
    ProfileSetMfaResp,
    ProfileSetPasswordReq,
    ProfileSetPasswordResp,
    RecoveryCodesLeftResp,
    RecoveryCodesReq,
    RecoveryCodesResp,
    TotpGenerateResp,
)
from quatrix_mfa.api.views import profile_resp
from quatrix_mfa.core import profile

router = APIRouter(tags=["Profile"])
ERRORS = error_responses(400, 401, 429)


def qr_png_base64(uri: str) -> str:
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="png", scale=5, border=2)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@router.get("/profile", response_model=ProfileResp, responses=ERRORS)
async def get_profile(ctx: FullDep) -> JSONResponse:
    # No I/O here (the session lookup ran in the dependency): async saves a thread hop.
    return reply(profile_resp(ctx.signed_in.account, ctx.signed_in.user))


@router.post("/profile/set-password", response_model=ProfileSetPasswordResp, responses=ERRORS)
def set_password(body: ProfileSetPasswordReq, ctx: FullDep, core: CoreDep) -> JSONResponse:
    """Both passwords base64-encoded (spec); other sessions of the user close."""
    email = profile.change_password(core, ctx, body.password, body.new_password)
    return reply(ProfileSetPasswordResp(email=email))


@router.get("/profile/2fa/generate", response_model=TotpGenerateResp, responses=ERRORS)
def generate_2fa(ctx: SessionDep, core: CoreDep) -> JSONResponse:
    enrollment = profile.start_totp_enrollment(core, ctx)
    return reply(
        TotpGenerateResp(
            secret=enrollment.secret, uri=enrollment.uri, qr=qr_png_base64(enrollment.uri)
        )
    )


@router.post("/profile/set-mfa", response_model=ProfileSetMfaResp, tags=["MFA"], responses=ERRORS)
def set_mfa(body: ProfileSetMfaReq, ctx: SessionDep, core: CoreDep) -> JSONResponse:
    """Activate a factor; all sessions close and the caller gets a fresh id."""
    result = profile.set_factor(core, ctx, body.auth_type, body.code)
    resp = ProfileSetMfaResp(session_ids=result.token, recovery_codes=result.recovery_codes)
    return reply(resp, headers={TOKEN_HEADER: result.token})


@router.post(
    "/profile/remove-mfa", response_model=ProfileRemoveMfaResp, tags=["MFA"], responses=ERRORS
)
def remove_mfa(body: ProfileRemoveMfaReq, ctx: FullDep, core: CoreDep) -> JSONResponse:
    profile.remove_factor(core, ctx, body.auth_type)
    return reply(ProfileRemoveMfaResp())


# Our extension (not in the upstream spec): recovery codes of the caller.


@router.get(
    "/profile/recovery-codes", response_model=RecoveryCodesLeftResp, tags=["MFA"], responses=ERRORS
)
def recovery_codes_left(ctx: FullDep, core: CoreDep) -> JSONResponse:
    """How many of the caller's recovery codes are unused."""
    return reply(RecoveryCodesLeftResp(remaining=profile.recovery_codes_left(core, ctx)))


@router.post(
    "/profile/recovery-codes", response_model=RecoveryCodesResp, tags=["MFA"], responses=ERRORS
)
def regenerate_recovery_codes(body: RecoveryCodesReq, ctx: FullDep, core: CoreDep) -> JSONResponse:
    """A new set of recovery codes for a current TOTP code; the old set stops working."""
    codes = profile.regenerate_recovery_codes(core, ctx, body.code)
    return reply(RecoveryCodesResp(recovery_codes=codes))
