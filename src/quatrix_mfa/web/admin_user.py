"""One user in the admin console: invite (create), view, edit (name, email,
role, status: disabling is an edit), delete, and the factor actions for them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from quatrix_mfa.core import admin, devices, mail, mfa_recovery
from quatrix_mfa.core.errors import EmailTaken, NotFound, ParameterError, QuatrixError
from quatrix_mfa.core.model import User
from quatrix_mfa.web.admin_common import notice_text, problems, refused, refused_post, text_field
from quatrix_mfa.web.admin_users import (
    action_form,
    action_labels,
    action_refusal,
    apply_action,
    user_row,
)
from quatrix_mfa.web.answers import core_text
from quatrix_mfa.web.devices import rows as device_rows
from quatrix_mfa.web.page import Browser, BrowserDep

router = APIRouter(include_in_schema=False)

USER_PATH = "/admin/users/{id}"


def _person_form(page: Browser) -> tuple[dict[str, str], dict[str, str]]:
    """Name, email, role and status as typed, and what is wrong with them
    that no use case would say in words a person reads next to the field."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name in ("name", "email"):
        values[name], problem = text_field(page, name)
        if problem is None and not values[name]:
            problem = page.gettext("Required.")
        if problem is not None:
            errors[name] = problem
    values["role"] = page.form.values.get("role", "user")
    values["status"] = page.form.values.get("status", "A")
    if values["role"] not in ("user", "admin"):
        errors["role"] = page.gettext("Choose a role.")
    if values["status"] not in ("A", "D"):
        errors["status"] = page.gettext("Choose a status.")
    return values, errors


def _refusal(page: Browser, error: QuatrixError) -> dict[str, str]:
    if isinstance(error, EmailTaken):
        return {"email": page.gettext("Another user has this email.")}
    found = problems(page, error)
    if "ids" in found:  # one user: the reason is the form's, not a list of ids
        found["_form"] = core_text(page, error.msg)
        del found["ids"]
    return found


@router.get("/admin/users/new")
def new_user_page(page: BrowserDep) -> Response:
    """The invitation form: name, email, role."""
    stop = refused(page)
    if stop is not None:
        return stop
    values = {"name": "", "email": "", "role": "user", "status": "A"}
    return page.render("admin_user_new.html", values=values)


@router.post("/admin/users/new")
def create_user(page: BrowserDep) -> Response:
    """Create the user; core mails them the link to set a password."""
    stop = refused_post(page)
    if stop is not None:
        return stop
    values, errors = _person_form(page)
    if not errors:
        try:
            user = admin.create_user(
                page.core,
                page.ctx,
                values["name"],
                values["email"],
                values["role"] == "admin",
                values["status"],
                None,
            )
        except QuatrixError as error:
            errors = _refusal(page, error)
        else:
            return page.redirect(f"/admin/users/{user.id}", notice="created")
    return page.render("admin_user_new.html", 400, values=values, errors=errors)


def _user(page: Browser, user_id: str) -> User | None:
    try:
        return admin.get_user(page.core, page.ctx, user_id)
    except (NotFound, ParameterError):  # a malformed id is no user either
        return None


def _user_page(
    page: Browser, user: User, status: int = 200, *, notice: str = "", **values: Any
) -> Response:
    row = user_row(page.ctx.signed_in.account, user)
    recovery = mfa_recovery.open_recoveries(page.core, page.ctx, [user.id]).get(user.id)
    values.setdefault(
        "values",
        {
            "name": user.name,
            "email": user.email,
            "role": "admin" if user.super_admin else "user",
            "status": user.status,
        },
    )
    return page.render(
        "admin_user.html",
        status,
        user=row,
        actions=action_labels(page),
        itself=user.id == page.ctx.signed_in.user.id,
        recovery_ready=mail.moment(recovery.ready_at) if recovery else "",
        recovery_approved=bool(recovery and recovery.approved_by),
        devices=device_rows(devices.list_of_user(page.core, page.ctx, user.id)),
        notice=notice,
        **values,
    )


def _missing(page: Browser) -> Response:
    return page.render("admin_user_missing.html", 404)


def _posted_user(page: Browser, user_id: str) -> User | Response:
    """The user a post of the console is about, or the page to answer instead
    (sign in, 403, the CSRF refusal, no such user)."""
    stop = refused_post(page)
    if stop is not None:
        return stop
    return _user(page, user_id) or _missing(page)


@router.get(USER_PATH)
def user_page(id: str, page: BrowserDep, notice: str = "") -> Response:
    """One user: 2FA and PIN state, the edit, factor and delete forms."""
    stop = refused(page)
    if stop is not None:
        return stop
    user = _user(page, id)
    if user is None:
        return _missing(page)
    return _user_page(page, user, notice=notice_text(notice))


@router.post(USER_PATH)
def edit_user(id: str, page: BrowserDep) -> Response:
    """Name, email, role and status (``D`` disables: the user's sessions end)."""
    user = _posted_user(page, id)
    if not isinstance(user, User):
        return user
    values, errors = _person_form(page)
    if not errors:
        changes = admin.UserChanges(
            name=values["name"],
            email=values["email"],
            status=values["status"],
            super_admin=values["role"] == "admin",
        )
        try:
            admin.edit_users(page.core, page.ctx, [user.id], changes)
        except QuatrixError as error:
            errors = _refusal(page, error)
        else:
            return page.redirect(f"/admin/users/{user.id}", notice="saved")
    return _user_page(page, user, 400, values=values, errors=errors)


@router.post(USER_PATH + "/delete")
def delete_user(id: str, page: BrowserDep) -> Response:
    """Delete the user once the box is ticked (core refuses the caller themself)."""
    user = _posted_user(page, id)
    if not isinstance(user, User):
        return user
    if page.form.values.get("confirm") != "yes":
        errors = {"confirm": page.gettext("Tick the box to confirm.")}
        return _user_page(page, user, 400, errors=errors)
    try:
        admin.delete_users(page.core, page.ctx, [user.id])
    except QuatrixError as error:
        return _user_page(page, user, 400, errors={"confirm": _refusal(page, error).popitem()[1]})
    return page.redirect("/admin/users", notice="deleted")


@router.post(USER_PATH + "/factors")
def user_factors(id: str, page: BrowserDep) -> Response:
    """A factor action for this one user (the list's actions, for one)."""
    user = _posted_user(page, id)
    if not isinstance(user, User):
        return user
    _ids, action, pin, errors = action_form(page)
    errors.pop("ids", None)
    if not errors:
        try:
            apply_action(page, [user.id], action, pin)
        except QuatrixError as error:
            refusal = action_refusal(page, error)
            # One user: the reason (naming them) belongs to the action.
            reason = refusal.pop("ids", None) or refusal.pop("_form", None)
            errors = {**refusal, **({"action": reason} if reason else {})}
        else:
            return page.redirect(f"/admin/users/{user.id}", notice="done")
    return _user_page(page, user, 400, errors=errors, action=action)


@router.post(USER_PATH + "/recovery")
def decide_recovery(id: str, page: BrowserDep) -> Response:
    """Approve (``decision=approve``) or cancel the user's open lost-device recovery."""
    user = _posted_user(page, id)
    if not isinstance(user, User):
        return user
    decision = page.form.values.get("decision")
    if decision not in ("approve", "cancel"):
        return _user_page(page, user, 400, errors={"_form": "Choose to approve or cancel."})
    decide = mfa_recovery.approve if decision == "approve" else mfa_recovery.cancel
    try:
        decide(page.core, page.ctx, [user.id])
    except QuatrixError as error:  # none open (any more): the reason, for the whole form
        return _user_page(page, user, 400, errors={"_form": error.msg})
    return page.redirect(f"/admin/users/{user.id}", notice="done")
