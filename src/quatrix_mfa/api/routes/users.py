"""User (admin): the caller's account's users and their factors."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from quatrix_mfa.api.deps import CoreDep, FullDep, error_responses, reply
from quatrix_mfa.api.schemas import (
    JobResp,
    ProfileRemoveMfaResp,
    UserCreateReq,
    UserDeleteReq,
    UserEditReq,
    UserRemoveMfaReq,
    UserResetMfaReq,
    UserResp,
    UserSetMfaReq,
)
from quatrix_mfa.api.views import user_resp
from quatrix_mfa.core import admin

router = APIRouter(tags=["User"])
ERRORS = error_responses(400, 401, 403)


@router.get("/user", response_model=list[UserResp], responses=ERRORS)
def list_users(ctx: FullDep, core: CoreDep) -> JSONResponse:
    return reply([user_resp(ctx.signed_in.account, u) for u in admin.list_users(core, ctx)])


@router.get(
    "/user/metadata/{id}", response_model=UserResp, responses={**error_responses(404), **ERRORS}
)
def user_metadata(id: str, ctx: FullDep, core: CoreDep) -> JSONResponse:
    return reply(user_resp(ctx.signed_in.account, admin.get_user(core, ctx, id)))


@router.post("/user/create", response_model=UserResp, status_code=201, responses=ERRORS)
def create_user(body: UserCreateReq, ctx: FullDep, core: CoreDep) -> JSONResponse:
    """A user without a password; a password-set link is mailed to them."""
    user = admin.create_user(
        core,
        ctx,
        body.name,
        body.email,
        body.super_admin == "Y",
        body.status or "A",
        body.language,
    )
    return reply(user_resp(ctx.signed_in.account, user), 201)


@router.post("/user/edit", response_model=list[UserResp], responses=ERRORS)
def edit_users(body: UserEditReq, ctx: FullDep, core: CoreDep) -> JSONResponse:
    changes = admin.UserChanges(
        name=body.name,
        email=body.email,
        status=body.status,
        super_admin=None if body.super_admin is None else body.super_admin == "Y",
        language=body.language,
    )
    users = admin.edit_users(core, ctx, body.ids, changes)
    return reply([user_resp(ctx.signed_in.account, u) for u in users])


@router.post("/user/delete", response_model=JobResp, status_code=202, responses=ERRORS)
def delete_users(body: UserDeleteReq, ctx: FullDep, core: CoreDep) -> JSONResponse:
    return reply(JobResp(job_id=admin.delete_users(core, ctx, body.ids)), 202)


@router.post("/user/set-mfa", response_model=ProfileRemoveMfaResp, tags=["MFA"], responses=ERRORS)
def set_mfa(body: UserSetMfaReq, ctx: FullDep, core: CoreDep) -> JSONResponse:
    admin.set_factor(core, ctx, body.ids, body.auth_type, body.code)
    return reply(ProfileRemoveMfaResp())


@router.post(
    "/user/remove-mfa", response_model=ProfileRemoveMfaResp, tags=["MFA"], responses=ERRORS
)
def remove_mfa(body: UserRemoveMfaReq, ctx: FullDep, core: CoreDep) -> JSONResponse:
    admin.remove_factor(core, ctx, body.ids, body.auth_type)
    return reply(ProfileRemoveMfaResp())


@router.post("/user/reset-mfa", response_model=ProfileRemoveMfaResp, tags=["MFA"], responses=ERRORS)
def reset_mfa(body: UserResetMfaReq, ctx: FullDep, core: CoreDep) -> JSONResponse:
    admin.reset_factor(core, ctx, body.ids)
    return reply(ProfileRemoveMfaResp())
