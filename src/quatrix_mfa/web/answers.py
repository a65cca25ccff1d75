"""What the pages say and do when core refuses, in one place: a refusal in
words, the 403 page of a forged or stale form, the way back to sign-in, and
the guard of every signed-in page (a full session; on a post, the CSRF token)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from quatrix_mfa.core import devices, policy, profile, reauth
from quatrix_mfa.core.errors import (
    AddressNotAllowed,
    FactorForced,
    FactorNotActive,
    NoPendingEnrollment,
    NotAuthenticated,
    ParameterError,
    QuatrixError,
    ReauthenticationRequired,
    SignedInByDevice,
    TooManyAttempts,
    WrongCode,
)
from quatrix_mfa.core.sessions import Caller
from quatrix_mfa.web.i18n import N_
from quatrix_mfa.web.page import BadForm, Browser
from quatrix_mfa.web.security import safe_next

# Why a factor cannot be removed, by who forces it (core.policy.forced_by).
FORCED_BY = {
    policy.BY_ADMIN: N_(
        "Your administrator requires it for your account, so you cannot turn it off."
    ),
    policy.BY_ACCOUNT: N_(
        "Your organisation requires 2FA for everyone, so you cannot turn it off."
    ),
}


# Core's words (the API's English, ``error.msg`` and the problems in
# ``error.details``) as a person reads them on a page, in their language.
CORE_TEXTS = {
    # A TOTP code of the other length (core/factors/totp.py check_length).
    "this key's codes have 6 digits": N_("Your app's codes for this key have 6 digits."),
    "this key's codes have 8 digits": N_("Your app's codes for this key have 8 digits."),
    "one of SHA1, SHA256, SHA512": N_("Choose SHA-1, SHA-256 or SHA-512."),
    "6 or 8": N_("Choose 6 or 8 digits."),
    "30 or 60": N_("Choose 30 or 60 seconds."),
    "Unknown ids": N_("Not users of this account"),
    "Invalid ids": N_("Not user ids"),
    "at least one id": N_("Select at least one user."),
    "Only an administrator can do this": N_("Only an administrator can do this."),
    "Not allowed": N_("Only an administrator can do this."),
    "No such user": N_("There is no such user."),
    "The account must keep an active administrator": N_(
        "The account must keep at least one active administrator"
    ),
    "The account forces 2FA": N_(
        "2FA is forced for the whole account (see Settings), so it cannot be removed for"
    ),
    "2FA is not active": N_("2FA is not on for"),
    "PIN is not active": N_("No PIN is set for"),
    "Email is already taken": N_("Another user has this email."),
    "not an email address": N_("Not an email address."),
    "an email can be changed for one user at a time": N_(
        "An email can be changed for one user at a time."
    ),
    "PIN must be 4 to 16 digits": N_("A PIN is 4 to 16 digits."),
    "IP needs at least one entry": N_(
        "Add at least one address, network or range before turning this on."
    ),
    "Invalid ip_whitelist entries": N_("Not an address, a network or a range"),
    "not a page of this list": N_(
        "This page of the list is gone: start again from the first page."
    ),
    "after the start": N_("The end must not be before the start."),
    "not an event of the audit trail": N_("Choose an event from the list."),
    "A or D": N_("Choose a status from the list."),
    "none, active, forced or enroll": N_("Choose a 2FA state from the list."),
    SignedInByDevice.default_msg: N_(
        "You signed in with a trusted browser: sign in with your second factor to change this."
    ),
    "Parameter error": N_("This could not be done: check what you entered."),
}
_LOCKOUT = re.compile(r"would lock out your own address \((.*?)\)")
_AT_MOST = re.compile(r"at most (\d+) (ids|entries|characters)")
AT_MOST = {
    "ids": N_("At most %(n)d users at once."),
    "entries": N_("At most %(n)d entries."),
    "characters": N_("At most %(n)d characters, and no control characters."),
}


# What a refused TOTP code's diagnosis (core/factors/drift.py) tells a person.
_CLOCK_TEXTS = {
    (False, True): N_("Your phone's clock seems about a minute behind: set it to automatic time."),
    (False, False): N_(
        "Your phone's clock seems about %(minutes)d minutes behind: set it to automatic time."
    ),
    (True, True): N_("Your phone's clock seems about a minute ahead: set it to automatic time."),
    (True, False): N_(
        "Your phone's clock seems about %(minutes)d minutes ahead: set it to automatic time."
    ),
}


def _drift_text(page: Browser, details: dict[str, Any] | None) -> str | None:
    """The clock-drift or used-code hint of a refused code, if core gave one."""
    reason = (details or {}).get("reason")
    if reason == "used":
        return page.gettext("That code was already used: wait for the next one.")
    if reason != "clock":
        return None
    seconds = int(details["clock_offset_seconds"]) if details else 0
    minutes = max(1, round(abs(seconds) / 60))
    text = page.gettext(_CLOCK_TEXTS[(seconds > 0, minutes == 1)])
    return text if minutes == 1 else text % {"minutes": minutes}


def core_text(page: Browser, text: str) -> str:
    """One of core's texts (a refusal's ``msg`` or a problem it names) in the
    reader's language; a text not known here is shown as core says it."""
    if text in CORE_TEXTS:
        return page.gettext(CORE_TEXTS[text])
    if found := _LOCKOUT.match(text):
        lockout = page.gettext(
            "This list would lock you out: your own address (%(addr)s) is not in it. "
            "Behind a proxy, let the service trust the address it forwards."
        )
        return lockout % {"addr": found.group(1)}
    if found := _AT_MOST.match(text):
        return page.gettext(AT_MOST[found.group(2)]) % {"n": int(found.group(1))}
    return text


def refusal(page: Browser, error: QuatrixError) -> str:
    """What a person is told, in their language, when core refuses."""
    _ = page.gettext
    if isinstance(error, TooManyAttempts):
        wait = _("Too many attempts. Wait %(seconds)d seconds, then try again.")
        return wait % {"seconds": error.retry_after}
    if isinstance(error, AddressNotAllowed):
        return _("Your account does not allow signing in from this network address.")
    if isinstance(error, WrongCode):
        return _drift_text(page, error.details) or _(
            "That code is not right. Check it and try again."
        )
    if isinstance(error, NotAuthenticated):
        return _("Wrong email or password.")
    if isinstance(error, NoPendingEnrollment):
        return _("That key had expired. Add this new one to your app, then enter its code.")
    if isinstance(error, FactorForced):
        return _(FORCED_BY.get(error.by, N_("It is required, so you cannot turn it off.")))
    if isinstance(error, FactorNotActive):
        return _("It is not turned on.")
    if isinstance(error, ParameterError) and error.details:  # a field's problem
        problem = next(iter(error.details.values()))
        if isinstance(problem, str):
            return core_text(page, problem)
    return core_text(page, error.msg)


def by_device_text(page: Browser) -> str:
    """Core's refusal of any change of the factors on a session opened through
    a trusted browser (core/devices.py), in words; "" on any other session,
    whose forms the factor pages show."""
    if devices.by_device(page.ctx.signed_in):
        return refusal(page, SignedInByDevice())
    return ""


def forbidden(page: Browser) -> Response:
    """A post without a valid CSRF token or from another site: nothing changes."""
    return page.render("forbidden.html", 403)


def to_login(page: Browser) -> Response:
    """No full session: sign in first, then come back here (a local path)."""
    url = page.request.url
    here = url.path + ("?" + url.query if url.query else "")
    return page.redirect("/login", next=safe_next(here))


def signed_in(page: Browser) -> Caller | None:
    """The caller's full session, or None (no session, or a pending one)."""
    caller = page.caller
    return None if caller is None or caller.session.pending else caller


def guard(page: Browser, *, back: str | None = None) -> Response | None:
    """The answer instead of the page, if there is one: no full session goes
    to sign-in and then back to the page. A post (``back``: the path of the
    page its form is on) without our CSRF token gets the 403 page, before
    anything is read or changed."""
    if signed_in(page) is None:
        return to_login(page) if back is None else page.redirect("/login", next=back)
    if back is not None and not page.csrf_valid():
        return forbidden(page)
    return None


def fields(page: Browser, *names: str) -> tuple[dict[str, str], dict[str, str]]:
    """The posted ``names`` as text, and an error for each that no page of
    ours could have sent (it then reads as empty)."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name in names:
        try:
            values[name] = page.form.get(name)
        except BadForm as bad:
            values[name], errors[name] = "", page.gettext(bad.problem)
    return values, errors


CURRENT_PASSWORD = "current_password"  # noqa: S105 - a field name


def needs_password(page: Browser) -> bool:
    """Whether a sensitive form must ask for the current password (core's rule)."""
    return not reauth.is_recent(page.core, page.ctx)


def reauthenticated(page: Browser, password: str) -> dict[str, str]:
    """Core's word on a sensitive change: nothing ({}) if it may go on, else
    the error to show next to the ``current_password`` field."""
    try:
        reauth.reauthenticate(page.core, page.ctx, password)
    except ReauthenticationRequired:
        return {
            CURRENT_PASSWORD: page.gettext("Enter your current password to confirm this change.")
        }
    except TooManyAttempts as error:
        return {CURRENT_PASSWORD: refusal(page, error)}
    except ParameterError:
        return {CURRENT_PASSWORD: page.gettext("That is not your current password.")}
    return {}


def remove_own_factor(
    page: Browser, factor: str, show: Callable[..., Response], *, back: str, notice: str
) -> Response:
    """The "turn it off" form of the caller's own ``factor`` (the 2FA and PIN
    pages): the current password unless the sign-in is recent, then core's
    ``remove_factor``. ``show(page, status, form=..., errors=...)`` is the
    factor's page; a refusal (forced, not on) shows on its remove form, a
    session opened by a trusted device gets it as a 403. Success goes back to
    ``back`` with ``notice``."""
    if (answer := guard(page, back=back)) is not None:
        return answer
    given, errors = fields(page, CURRENT_PASSWORD)
    if not errors:
        errors = reauthenticated(page, given[CURRENT_PASSWORD])
    if errors:
        return show(page, 400, form="remove", errors=errors)
    try:
        profile.remove_factor(page.core, page.ctx, factor)
    except SignedInByDevice:
        return show(page, 403)
    except (FactorForced, FactorNotActive) as error:
        return show(page, 400, form="remove", errors={"remove": refusal(page, error)})
    return page.redirect(back, notice=notice)
