"""The account's settings in the admin console: forcing 2FA (after a preview
of what it will do) and the IP allow-list. Core decides everything: what
forcing ends, which entries are valid, that the admin's own address stays in."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from quatrix_mfa.core import mail, rollout, site
from quatrix_mfa.core.errors import QuatrixError
from quatrix_mfa.core.model import IP, TWO_FA
from quatrix_mfa.web.admin_common import notice_text, problems, refused, refused_post
from quatrix_mfa.web.i18n import N_
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
    enroll_by = account.mfa_enroll_by if account.force_2fa else None
    values.setdefault("grace_text", "0")
    values.setdefault("trust_days_text", str(account.trusted_device_days))
    return page.render(
        "admin_settings.html",
        status,
        forced=account.force_2fa,
        enroll_by=mail.moment(enroll_by) if enroll_by and enroll_by > page.ctx.now else "",
        self_recovery=account.mfa_self_recovery,
        totp_choice=(account.totp_algorithm, account.totp_digits, account.totp_period),
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
    grace_text = (page.form.values.get("mfa_grace_days") or "0").strip()
    grace = _grace_days(grace_text) if wanted == "yes" else None
    if wanted == "yes" and grace is None:
        errors = {"mfa_grace_days": page.gettext(GRACE_PROBLEM)}
        return _settings_page(page, 400, errors=errors, grace_text=grace_text[:10])
    if wanted == "yes" and page.form.values.get("confirm") != "yes":
        impact = site.mfa_impact(page.core, page.ctx)
        return page.render("admin_settings_preview.html", impact=impact, grace=grace)
    methods = _methods(force_2fa=wanted == "yes", ip=account.ip_restricted)
    try:
        site.set_settings(page.core, page.ctx, {}, methods, None, grace_days=grace)
    except QuatrixError as error:
        return _settings_page(page, 400, errors=problems(page, error), grace_text=grace_text[:10])
    return page.redirect("/admin/settings", notice="saved")


GRACE_PROBLEM = N_("Enter a whole number of days from 0 to 90.")


def _grace_days(text: str) -> int | None:
    """The grace period as typed, if it is a whole number (core checks its range)."""
    if not text.isascii() or not text.isdigit() or len(text) > 3:
        return None
    days = int(text)
    return days if days <= rollout.MAX_GRACE_DAYS else None


@router.post("/admin/settings/recovery")
def self_recovery(page: BrowserDep) -> Response:
    """Whether users may start a lost-device recovery themselves."""
    stop = refused_post(page)
    if stop is not None:
        return stop
    allowed = page.form.values.get("mfa_self_recovery") == "yes"
    site.set_settings(page.core, page.ctx, {}, None, None, self_recovery=allowed)
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
