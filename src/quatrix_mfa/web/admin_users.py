"""The admin console's user list: search, filters, keyset paging, and the
factor actions on a selection of users (all-or-nothing, as core does them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.responses import Response

from quatrix_mfa.core import admin, directory, policy
from quatrix_mfa.core.errors import QuatrixError
from quatrix_mfa.core.model import PIN, TOTP_KIND, TWO_FA, Account, User
from quatrix_mfa.web.admin_common import notice_text, problems, refused, refused_post
from quatrix_mfa.web.answers import core_text
from quatrix_mfa.web.i18n import N_
from quatrix_mfa.web.page import BadForm, Browser, BrowserDep

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
FILTERS = ("q", "status", "two_factor")
# The factor actions of the console: (label, what core does); the labels are
# translated where shown (:func:`action_labels`).
ACTIONS = {
    "force-2fa": N_("Force 2FA"),
    "reset-2fa": N_("Reset 2FA (enroll a new key)"),
    "remove-2fa": N_("Remove 2FA"),
    "set-pin": N_("Set a PIN"),
    "remove-pin": N_("Remove the PIN"),
}


def action_labels(page: Browser) -> dict[str, str]:
    """The factor actions with their labels in the reader's language."""
    return {action: page.gettext(label) for action, label in ACTIONS.items()}


def user_row(account: Account, user: User) -> dict[str, Any]:
    """What the list and the user page show of a user; the 2FA state is core's policy."""
    if not policy.needs_totp(account, user):
        two_factor = "none"
    elif TOTP_KIND in user.enrolled:
        two_factor = "active"
    else:
        two_factor = "enroll"
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "admin": user.super_admin,
        "active": user.is_active,
        "two_factor": two_factor,
        "forced": policy.totp_forced(account, user),
        "pin": user.pin_active,
        "last_login": user.last_login,
    }


def apply_action(page: Browser, ids: Sequence[str], action: str, pin: str) -> None:
    """Run one factor action on ``ids`` through core's all-or-nothing use cases."""
    core, ctx = page.core, page.ctx
    if action == "force-2fa":
        admin.set_factor(core, ctx, ids, TWO_FA, None)
    elif action == "set-pin":
        admin.set_factor(core, ctx, ids, PIN, pin)
    elif action == "reset-2fa":
        admin.reset_factor(core, ctx, ids)
    elif action == "remove-2fa":
        admin.remove_factor(core, ctx, ids, TWO_FA)
    else:
        admin.remove_factor(core, ctx, ids, PIN)


def action_form(page: Browser) -> tuple[list[str], str, str, dict[str, str]]:
    """The selection, the action and the PIN of a factor-action form, with
    what is wrong with them before core is asked."""
    errors: dict[str, str] = {}
    try:
        ids = page.form.getlist("ids")
    except BadForm:
        ids, errors["ids"] = [], page.gettext("Select users from this list.")
    action = page.form.values.get("action", "")
    pin = page.form.values.get("pin", "").strip()
    if action not in ACTIONS:
        errors["action"] = page.gettext("Choose an action.")
    if not ids and "ids" not in errors:
        errors["ids"] = page.gettext("Select at least one user.")
    if action == "set-pin" and not pin:
        errors["pin"] = page.gettext("Enter the PIN to set.")
    return ids, action, pin, errors


def action_refusal(page: Browser, error: QuatrixError) -> dict[str, str]:
    """Core's all-or-nothing refusal on the page: which users (by email where
    they are the account's), and why. A refused PIN is shown at the PIN
    field (core names it ``code``)."""
    found = problems(page, error)
    named = (error.details or {}).get("ids")
    if isinstance(named, list) and named:
        emails = directory.emails_of(page.core, page.ctx, {str(i) for i in named})
        listed = ", ".join(emails.get(str(i), str(i)) for i in named)
        found["ids"] = f"{core_text(page, error.msg)}: {listed}"
    if "code" in found:
        found["pin"] = found.pop("code")
    return found


def _filters(values: dict[str, str]) -> dict[str, str]:
    return {name: values.get(name, "") for name in FILTERS}


def list_page(
    page: Browser,
    filters: dict[str, str],
    after: str = "",
    status: int = 200,
    errors: dict[str, str] | None = None,
    selected: Sequence[str] = (),
    **values: Any,
) -> Response:
    """The list with ``filters`` from the cursor ``after``; a filter or cursor
    that core refuses is shown next to its field, with no rows."""
    errors = dict(errors or {})
    wanted = directory.UserFilter(filters["q"], filters["status"], filters["two_factor"])
    account = page.ctx.signed_in.account
    try:
        found = directory.find_users(page.core, page.ctx, wanted, after or None, PAGE_SIZE)
        rows, more = [user_row(account, u) for u in found.rows], found.next_cursor
        drifting = directory.clock_drift(page.core, page.ctx, [row["id"] for row in rows])
        for row in rows:
            row["drift"] = drifting.get(row["id"])
    except QuatrixError as error:
        rows, more, status = [], None, 400
        errors.update(problems(page, error))
    query = {k: v for k, v in filters.items() if v}
    return page.render(
        "admin_users.html",
        status,
        errors=errors,
        filters=filters,
        rows=rows,
        selected=set(selected),
        actions=action_labels(page),
        after=after,
        next_url="/admin/users?" + urlencode({**query, "after": more}) if more else "",
        first_url=("/admin/users?" + urlencode(query)) if after else "",
        **values,
    )


@router.get("/admin")
def admin_home(page: BrowserDep) -> Response:
    """The console starts at its users."""
    return refused(page) or page.redirect("/admin/users")


@router.get("/admin/users")
def users_page(
    page: BrowserDep,
    q: str = "",
    status: str = "",
    two_factor: str = "",
    after: str = "",
    notice: str = "",
) -> Response:
    """The users matching the search and filters, 50 a page from ``after``."""
    stop = refused(page)
    if stop is not None:
        return stop
    filters = {"q": q, "status": status, "two_factor": two_factor}
    return list_page(page, filters, after, notice=notice_text(notice))


@router.post("/admin/users/actions")
def users_action(page: BrowserDep) -> Response:
    """A factor action on the users ticked in the list; on a refusal the same
    list again with the answer (nothing changed), the ticks kept."""
    stop = refused_post(page)
    if stop is not None:
        return stop
    filters = _filters(page.form.values)
    after = page.form.values.get("after", "")  # the page the form was on
    ids, action, pin, errors = action_form(page)
    if not errors:
        try:
            apply_action(page, ids, action, pin)
        except QuatrixError as error:
            errors = action_refusal(page, error)
    if errors:
        return list_page(
            page, filters, after, 400, errors, ids, notice="", action=action, refused=True
        )
    query = {k: v for k, v in {**filters, "after": after}.items() if v}
    return page.redirect("/admin/users", **query, notice="done")
