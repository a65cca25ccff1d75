"""The account's settings in the admin console: forcing 2FA (after a preview
of what it will do) and the IP allow-list. Core decides everything: what
forcing ends, which entries are valid, that the admin's own address stays in."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from quatrix_mfa.core import site
from quatrix_mfa.core.errors import QuatrixError
from quatrix_mfa.core.model import IP, TWO_FA
from quatrix_mfa.web.admin_common import notice_text, problems, refused, refused_post
from quatrix_mfa.web.page import BadForm, Browser, BrowserDep

router = APIRouter(include_in_schema=False)


def _methods(*, force_2fa: bool, ip: bool) -> list[str]:
    return ([IP] if ip else []) + ([TWO_FA] if force_2fa else [])


def _settings_page(
    page: Browser, status: int = 200, *, notice: str = "", **values: Any
) -> Response:
    account = site.get_settings(page.core, page.ctx)
    values.setdefault("ip_on", account.ip_restricted)
    values.setdefault("ip_text", "\n".join(account.ip_whitelist))
    return page.render(
        "admin_settings.html",
        status,
        forced=account.force_2fa,
        own_addr=page.ctx.addr or "",
        notice=notice,
        **values,
    )


@router.get("/admin/settings")
def settings_page(page: BrowserDep, notice: str = "") -> Response:
    """Forced 2FA and the IP allow-list, as the account has them now."""
    return refused(page) or _settings_page(page, notice=notice_text(notice))


@router.post("/admin/settings/2fa")
def force_2fa(page: BrowserDep) -> Response:
    """Forcing 2FA first shows what it will do (``confirm`` absent), then saves
    when confirmed. No longer forcing it ends nothing, so it saves at once."""
    stop = refused_post(page)
    if stop is not None:
        return stop
    wanted = page.form.values.get("force_2fa")
    if wanted not in ("yes", "no"):
        return _settings_page(
            page, 400, errors={"force_2fa": page.gettext("Choose to force 2FA or not.")}
        )
    account = page.ctx.signed_in.account
    if wanted == "yes" and page.form.values.get("confirm") != "yes":
        impact = site.mfa_impact(page.core, page.ctx)
        return page.render("admin_settings_preview.html", impact=impact)
    methods = _methods(force_2fa=wanted == "yes", ip=account.ip_restricted)
    try:
        site.set_settings(page.core, page.ctx, {}, methods, None)
    except QuatrixError as error:
        return _settings_page(page, 400, errors=problems(page, error))
    return page.redirect("/admin/settings", notice="saved")


@router.post("/admin/settings/ip")
def ip_allow_list(page: BrowserDep) -> Response:
    """The allow-list, one entry a line, and whether it holds. An entry that
    is no address, network or range, or a list without the admin's own
    address, is refused by core and shown next to the field as typed."""
    stop = refused_post(page)
    if stop is not None:
        return stop
    turn_on = page.form.values.get("ip_restricted") == "yes"
    try:
        text = page.form.get("ip_whitelist")
    except BadForm as bad:
        problem = page.gettext(bad.problem)
        errors = {
            "ip_whitelist": page.gettext("This list cannot be read (%(problem)s).")
            % {"problem": problem}
        }
        return _settings_page(page, 400, errors=errors, ip_on=turn_on, ip_text="")
    entries = [line.strip() for line in text.splitlines() if line.strip()]
    account = page.ctx.signed_in.account
    methods = _methods(force_2fa=account.force_2fa, ip=turn_on)
    try:
        site.set_settings(page.core, page.ctx, {}, methods, entries)
    except QuatrixError as error:
        found = problems(page, error)
        return _settings_page(page, 400, errors=found, ip_on=turn_on, ip_text=text)
    return page.redirect("/admin/settings", notice="saved")
