"""Site settings (admin): forced 2FA, the IP allow-list and the free-form settings."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from quatrix_mfa.api.deps import CoreDep, FullDep, error_responses, reply
from quatrix_mfa.api.schemas import (
    SettingsAuthMethodsRespItems,
    SettingsResp,
    SettingsSetReq,
)
from quatrix_mfa.api.views import settings_resp
from quatrix_mfa.core import admin, site

router = APIRouter(tags=["Site Settings"])
ERRORS = error_responses(400, 401, 403)


@router.get("/settings", response_model=SettingsResp, responses=ERRORS)
def get_settings(ctx: FullDep, core: CoreDep) -> JSONResponse:
    return reply(settings_resp(site.get_settings(core, ctx)))


@router.post("/settings/set", response_model=SettingsResp, responses=ERRORS)
def set_settings(body: SettingsSetReq, ctx: FullDep, core: CoreDep) -> JSONResponse:
    free_form = body.model_dump(exclude_none=True, exclude={"auth_methods", "ip_whitelist"})
    account = site.set_settings(core, ctx, free_form, body.auth_methods, body.ip_whitelist)
    return reply(settings_resp(account))


@router.get(
    "/settings/auth-methods", response_model=list[SettingsAuthMethodsRespItems], responses=ERRORS
)
def auth_methods(ctx: FullDep) -> JSONResponse:
    admin.require_admin(ctx)  # site settings are the administrator's (DESIGN.md)
    return reply(
        [SettingsAuthMethodsRespItems(rank=m.rank, id=m.id, key=m.key) for m in site.auth_methods()]
    )
