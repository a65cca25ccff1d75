"""Site settings (admin): forced 2FA, the IP allow-list and the free-form settings."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from quatrix_mfa.api.deps import CoreDep, FullDep, error_responses, reply
from quatrix_mfa.api.schemas import (
    MfaImpactResp,
    MfaImpactUser,
    SettingsAuthMethodsRespItems,
    SettingsResp,
    SettingsSetReq,
)
from quatrix_mfa.api.views import enroll_by, settings_resp
from quatrix_mfa.core import admin, site
from quatrix_mfa.core.model import TWO_FA

router = APIRouter(tags=["Site Settings"])
ERRORS = error_responses(400, 401, 403)
TOTP_FIELDS = ("totp_algorithm", "totp_digits", "totp_period")


@router.get("/settings", response_model=SettingsResp, responses=ERRORS)
def get_settings(ctx: FullDep, core: CoreDep) -> JSONResponse:
    return reply(settings_resp(site.get_settings(core, ctx)))


@router.post("/settings/set", response_model=SettingsResp, responses=ERRORS)
def set_settings(body: SettingsSetReq, ctx: FullDep, core: CoreDep) -> JSONResponse:
    ours = {"auth_methods", "ip_whitelist", "mfa_grace_days", "mfa_self_recovery", *TOTP_FIELDS}
    ours |= {"trusted_device_days"}
    free_form = body.model_dump(exclude_none=True, exclude=ours)
    totp = {name: getattr(body, name) for name in TOTP_FIELDS if getattr(body, name) is not None}
    account = site.set_settings(
        core,
        ctx,
        free_form,
        body.auth_methods,
        body.ip_whitelist,
        grace_days=body.mfa_grace_days,
        self_recovery=body.mfa_self_recovery,
        device_days=body.trusted_device_days,
        totp=totp,
    )
    return reply(settings_resp(account))


@router.get(
    "/settings/auth-methods", response_model=list[SettingsAuthMethodsRespItems], responses=ERRORS
)
def auth_methods(ctx: FullDep) -> JSONResponse:
    account = admin.require_admin(ctx).account  # site settings are the administrator's (DESIGN.md)
    deadline = {TWO_FA: enroll_by(account)}
    return reply(
        [
            SettingsAuthMethodsRespItems(
                rank=m.rank, id=m.id, key=m.key, enroll_by=deadline.get(m.key)
            )
            for m in site.auth_methods()
        ]
    )


@router.get("/settings/mfa-impact", response_model=MfaImpactResp, responses=ERRORS)
def mfa_impact(ctx: FullDep, core: CoreDep) -> JSONResponse:
    """What forcing 2FA would do now: users, those without 2FA, their open
    sessions that would end, and the first 1,000 of them by email."""
    impact = site.mfa_impact(core, ctx)
    first = [MfaImpactUser(id=u.id, email=u.email, name=u.name) for u in impact.first_users]
    return reply(
        MfaImpactResp(
            users=impact.users,
            users_without_2fa=impact.users_without_2fa,
            sessions_to_end=impact.sessions_to_end,
            first_users=first,
        )
    )
