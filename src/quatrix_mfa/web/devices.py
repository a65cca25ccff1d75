"""Trusted devices on the pages (issue 13): the caller's list with "revoke"
for one and for all (``/account/devices``), the administrator's days setting
(``/admin/settings/devices``) and "revoke all" on a user's page. Every rule
is core's (core/devices.py); these handlers map its answers to pages.

Revoking only takes access away, as signing out a session does, so like the
sessions page it asks for no password again (a sensitive change that grants
or replaces a factor does)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from quatrix_mfa.core import admin, devices, site
from quatrix_mfa.core.errors import NotFound, ParameterError, QuatrixError
from quatrix_mfa.web.account import NOTICES as ACCOUNT_NOTICES
from quatrix_mfa.web.account_sessions import when
from quatrix_mfa.web.admin_common import problems, refused_post
from quatrix_mfa.web.admin_settings import _settings_page
from quatrix_mfa.web.answers import fields, guard
from quatrix_mfa.web.i18n import N_
from quatrix_mfa.web.page import Browser, BrowserDep

router = APIRouter(include_in_schema=False)

PATH = "/account/devices"
DEVICE_FIELD = "device"
NOTICES = {
    "device-revoked": N_("That browser is no longer trusted."),
    "devices-revoked": N_("No browser is trusted any more."),
}
DAYS_PROBLEM = N_("Enter a whole number of days from 0 to 365.")


def rows(listed: list[devices.DeviceView]) -> list[dict[str, Any]]:
    """Devices with their times as (ISO 8601, what a person reads)."""
    return [
        {
            "d": d,
            "created": when(d.created),
            "last_used": when(d.last_used) if d.last_used else None,
            "expires": when(d.expires_at),
        }
        for d in listed
    ]


def _page(page: Browser, status: int = 200, *, notice: str = "", error: str = "") -> Response:
    return page.render(
        "account_devices.html",
        status,
        notice=notice,
        error=error,
        devices=rows(devices.list_own(page.core, page.ctx)),
        device_field=DEVICE_FIELD,
    )


@router.get(PATH)
def devices_page(page: BrowserDep, notice: str = "") -> Response:
    if (answer := guard(page)) is not None:
        return answer
    return _page(page, notice=NOTICES.get(notice) or ACCOUNT_NOTICES.get(notice, ""))


@router.post(PATH + "/revoke")
def revoke_one(page: BrowserDep) -> Response:
    if (answer := guard(page, back=PATH)) is not None:
        return answer
    given, errors = fields(page, DEVICE_FIELD)
    try:
        if errors or not given[DEVICE_FIELD]:
            raise ParameterError("Unknown ids")
        devices.revoke_own(page.core, page.ctx, [given[DEVICE_FIELD]])
    except ParameterError:
        return _page(
            page, 404, error=N_("That browser is not one of yours, or it is no longer trusted.")
        )
    return page.redirect(PATH, notice="device-revoked")


@router.post(PATH + "/revoke-all")
def revoke_all(page: BrowserDep) -> Response:
    if (answer := guard(page, back=PATH)) is not None:
        return answer
    ids = [d.id for d in devices.list_own(page.core, page.ctx)]
    if ids:
        try:
            devices.revoke_own(page.core, page.ctx, ids)
        except ParameterError:  # one was revoked meanwhile: revoke what is left
            left = [d.id for d in devices.list_own(page.core, page.ctx)]
            if left:
                devices.revoke_own(page.core, page.ctx, left)
    return page.redirect(PATH, notice="devices-revoked")


# The administrator's side ---------------------------------------------------------


@router.post("/admin/settings/devices")
def trust_days(page: BrowserDep) -> Response:
    """How many days a trusted browser skips the second factor (0: off, which
    ends every trust of the account for good)."""
    stop = refused_post(page)
    if stop is not None:
        return stop
    text = (page.form.values.get("trusted_device_days") or "").strip()
    days = int(text) if text.isascii() and text.isdigit() and len(text) <= 3 else None
    if days is None or days > devices.MAX_DAYS:
        errors = {"trusted_device_days": page.gettext(DAYS_PROBLEM)}
        return _settings_page(page, 400, errors=errors, trust_days_text=text[:10])
    try:
        site.set_settings(page.core, page.ctx, {}, None, None, device_days=days)
    except QuatrixError as error:
        return _settings_page(page, 400, errors=problems(page, error), trust_days_text=text[:10])
    return page.redirect("/admin/settings", notice="saved")


@router.post("/admin/users/{id}/devices")
def revoke_users_devices(id: str, page: BrowserDep) -> Response:
    """Revoke every trusted browser of the user."""
    stop = refused_post(page)
    if stop is not None:
        return stop
    try:
        user = admin.get_user(page.core, page.ctx, id)
    except (NotFound, ParameterError):  # a malformed id is no user either
        return page.render("admin_user_missing.html", 404)
    devices.revoke_for_users(page.core, page.ctx, [user.id])
    return page.redirect(f"/admin/users/{user.id}", notice="done")
