"""What every handler of the pages shares: the request as core sees it
(a ``Channel.WEB`` context with the cookie's session), the form, and
rendering a template or a redirect with the page headers and cookies."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

import jinja2
from fastapi import Depends, Request
from starlette.datastructures import UploadFile
from starlette.responses import HTMLResponse, RedirectResponse, Response

from quatrix_mfa import observe
from quatrix_mfa.core import sessions
from quatrix_mfa.core.context import Channel, Context, Core
from quatrix_mfa.core.errors import AddressNotAllowed, NotAuthenticated
from quatrix_mfa.core.model import SessionKind
from quatrix_mfa.core.sessions import Caller
from quatrix_mfa.core.text import has_control
from quatrix_mfa.forwarding import request_client
from quatrix_mfa.web import i18n, security
from quatrix_mfa.web.i18n import N_
from quatrix_mfa.web.security import CSRF_FIELD, CookiePolicy

MAX_FIELD = 1024  # longer than any password (256) or email; a form is no upload
# Textareas: one entry a line (the IP allow-list: 1,000 entries of up to 64),
# within the app's 64 KiB body limit (api/limits.py).
MULTILINE_FIELDS = {"ip_whitelist": 60_000}
# A page of 50 users' checkboxes (the admin console) and a few fields more.
MAX_FIELDS = 120


@functools.cache
def templates(locale: str = i18n.DEFAULT) -> jinja2.Environment:
    """The templates, markup only, with their text in ``locale`` (one
    environment per language, built on first use: its compiled templates
    are kept with it)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("quatrix_mfa.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(  # type: ignore[attr-defined]
        i18n.translations(locale), newstyle=True
    )
    return env


def render_page(template: str, locale: str, **values: Any) -> str:
    """``template`` in ``locale``: the one place a page's markup is made."""
    values.setdefault("errors", {})
    values.setdefault("signed_in", False)
    values.setdefault("is_admin", False)
    return templates(locale).get_template(template).render(lang=locale, **values)


@dataclass
class Web:
    """The pages' settings, built once by :func:`quatrix_mfa.web.install`."""

    core: Core
    cookies: CookiePolicy


class BadForm(Exception):
    """A form that no page of ours sends (a file, a control character, too
    long). ``problem`` is a message to translate (:meth:`Browser.gettext`)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


@dataclass
class Form:
    """The posted fields as text; a file or an odd value is refused per field."""

    values: dict[str, str] = field(default_factory=dict)
    bad: dict[str, str] = field(default_factory=dict)
    # Every value of every name, in order (checkboxes share one name), and the
    # names with a value that no page of ours could have sent.
    lists: dict[str, list[str]] = field(default_factory=dict)
    bad_values: set[str] = field(default_factory=set)

    def get(self, name: str) -> str:
        """The field's text ('' when absent); :class:`BadForm` if no page of
        ours could have sent it, so nothing odd ever reaches core."""
        if name in self.bad:
            raise BadForm(name, self.bad[name])
        return self.values.get(name, "")

    def getlist(self, name: str) -> list[str]:
        """Every value sent under ``name`` (checkboxes); :class:`BadForm` as ``get``."""
        if name in self.bad_values:
            raise BadForm(name, self.bad[name])
        return self.lists.get(name, [])


def _problem(name: str, value: str | UploadFile) -> str | None:
    if isinstance(value, UploadFile):
        return N_("This field was sent twice, or as a file.")
    multiline = MULTILINE_FIELDS.get(name)
    if len(value) > (multiline or MAX_FIELD):
        return N_("Too long.")
    # A textarea's lines end in CR LF; no other control character anywhere.
    text = value.replace("\r\n", "").replace("\n", "") if multiline else value
    if has_control(text) or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        return N_("Contains a character that cannot be typed.")
    return None


async def read_form(request: Request) -> Form:
    form = Form()
    if request.method != "POST":
        return form
    try:
        parsed = await request.form(max_files=0, max_fields=MAX_FIELDS)
    except Exception:  # malformed multipart, too many fields: nothing is read
        form.bad[CSRF_FIELD] = N_("The form could not be read.")
        return form
    for name, value in parsed.multi_items():
        problem = _problem(name, value)
        if problem is not None:
            form.bad[name] = problem
            form.bad_values.add(name)
            continue
        assert isinstance(value, str)
        form.lists.setdefault(name, []).append(value)
        if name in form.values:  # only checkboxes repeat a name (see ``getlist``)
            form.bad[name] = N_("This field was sent twice, or as a file.")
        else:
            form.values[name] = value
    return form


@dataclass
class Browser:
    """One page request: core's context (with the cookie's live browser
    session, if any), the form, and the cookies to set on the answer."""

    request: Request
    web: Web
    ctx: Context
    form: Form
    presession: str
    locale: str = i18n.DEFAULT
    set_cookies: dict[str, str | None] = field(default_factory=dict)
    # Cookies that outlive the browser session: name -> (value, max-age seconds).
    lasting_cookies: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def core(self) -> Core:
        return self.web.core

    @property
    def caller(self) -> Caller | None:
        return self.ctx.caller

    def gettext(self, message: str) -> str:
        """``message`` in this request's language (for text a handler builds)."""
        return i18n.translations(self.locale).gettext(message)

    def signed_in_as(self, caller: Caller) -> None:
        """The session to carry from now on (a login step or a rotation opened it)."""
        self.set_cookies[self.web.cookies.session] = caller.token
        self.ctx = self.ctx.with_caller(caller)

    def carry(self, token: str) -> None:
        """Carry ``token`` (a new session id) in the cookie from this answer on."""
        self.set_cookies[self.web.cookies.session] = token

    def trust_device(self, token: str, days: int) -> None:
        """Keep a trusted device's token in its own cookie for ``days``."""
        self.lasting_cookies[self.web.cookies.device] = (token, days * 86400)

    def signed_out(self) -> None:
        self.set_cookies[self.web.cookies.session] = None

    def csrf_binding(self) -> str:
        """What this page's forms are tied to: the session, or before any
        session the pre-session cookie."""
        return self.caller.token if self.caller is not None else self.presession

    def csrf_valid(self) -> bool:
        """The post came from our own page, for this session (or browser)."""
        if not security.same_origin(self.request):
            return False
        try:
            sent = self.form.get(CSRF_FIELD)
        except BadForm:
            return False
        return security.csrf_ok(self.core, self.csrf_binding(), sent)

    def render(
        self, template: str, status: int = 200, *, secret: bool = False, **values: Any
    ) -> Response:
        """The page ``template`` with ``values``. Every page is ``no-store``
        (each has a form or shows a secret); ``secret`` marks the pages that
        show one (QR, key, recovery codes), for the reader."""
        body = render_page(
            template,
            self.locale,
            csrf_field=CSRF_FIELD,
            csrf_token=security.csrf_token(self.core, self.csrf_binding()),
            signed_in=self.caller is not None and not self.caller.session.pending,
            # Only to show the console's link: the console's own pages ask core.
            is_admin=self.caller is not None and self.caller.user.super_admin,
            **values,
        )
        # Every page: a form or a secret may be on it.
        headers = {**security.NO_STORE, "Content-Language": self.locale}
        return self._finish(HTMLResponse(body, status, headers=headers))

    def redirect(self, path: str, **query: str) -> Response:
        """303 See Other: after a post, the browser GETs the next page."""
        target = path + ("?" + urlencode(query) if query else "")
        return self._finish(RedirectResponse(target, 303))

    def _finish(self, response: Response) -> Response:
        response.headers.update(security.PAGE_HEADERS)
        cookies = self.web.cookies
        if self.request.cookies.get(cookies.presession) != self.presession:
            cookies.set(response, cookies.presession, self.presession)
        for name, value in self.set_cookies.items():
            if value is None:
                cookies.clear(response, name)
            else:
                cookies.set(response, name, value)
        for name, (value, max_age) in self.lasting_cookies.items():
            cookies.set_lasting(response, name, value, max_age)
        return response


def _browser_session(web: Web, request: Request) -> Caller | None:
    """The cookie's session if it is a live browser session, else none: an
    API token planted in the cookie is not a browser session."""
    token = request.cookies.get(web.cookies.session)
    if not token:
        return None
    try:
        caller = sessions.authenticate(web.core, token, request_client(request))
    except (NotAuthenticated, AddressNotAllowed):
        return None
    if caller.session.kind is not SessionKind.BROWSER:
        return None
    observe.note_user(caller.user.id)  # the request's log line names its user
    return caller


def browser(request: Request, form: Annotated[Form, Depends(read_form)]) -> Browser:
    """A sync dependency: FastAPI runs it (the session read) in the thread pool."""
    web: Web = request.app.state.web
    caller = _browser_session(web, request)
    presession = request.cookies.get(web.cookies.presession) or ""
    if len(presession) != 43 or has_control(presession):
        presession = security.new_presession()
    ctx = Context(caller, request_client(request), web.core.clock.now(), Channel.WEB)
    locale = i18n.negotiate(request.headers.get("accept-language"))
    page = Browser(request, web, ctx, form, presession, locale)
    if caller is None and request.cookies.get(web.cookies.session):
        page.signed_out()  # a dead or foreign session id: the browser forgets it
    return page


BrowserDep = Annotated[Browser, Depends(browser)]
