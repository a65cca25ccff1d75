"""Trusted devices (issue 13, our addition to the Quatrix API): the caller's
own, and an administrator's revocation of users' devices."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from quatrix_mfa.api.deps import CoreDep, FullDep, error_responses, reply
from quatrix_mfa.api.schemas import DevicesDeleteReq, DevicesDeleteResp, TrustedDeviceResp
from quatrix_mfa.core import devices

router = APIRouter(tags=["Trusted devices"])
ERRORS = error_responses(400, 401, 403)


def _resp(device: devices.DeviceView) -> TrustedDeviceResp:
    return TrustedDeviceResp(
        id=device.id,
        label=device.label,
        address=device.client_addr,
        created=device.created,
        last_used=device.last_used,
        expires=device.expires_at,
    )


@router.get("/profile/devices", response_model=list[TrustedDeviceResp], responses=ERRORS)
def list_devices(ctx: FullDep, core: CoreDep) -> JSONResponse:
    """The caller's trusted devices, newest first."""
    return reply([_resp(d) for d in devices.list_own(core, ctx)])


@router.post("/profile/devices/delete", response_model=DevicesDeleteResp, responses=ERRORS)
def delete_devices(body: DevicesDeleteReq, ctx: FullDep, core: CoreDep) -> JSONResponse:
    """Revoke some of the caller's trusted devices (400 naming any id that is
    not one of theirs; nothing changes then)."""
    return reply(DevicesDeleteResp(deleted=len(devices.revoke_own(core, ctx, body.ids))))


@router.post("/user/devices/delete", response_model=DevicesDeleteResp, responses=ERRORS)
def delete_users_devices(body: DevicesDeleteReq, ctx: FullDep, core: CoreDep) -> JSONResponse:
    """Admin: revoke every trusted device of these users (ids of users)."""
    return reply(DevicesDeleteResp(deleted=devices.revoke_for_users(core, ctx, body.ids)))
