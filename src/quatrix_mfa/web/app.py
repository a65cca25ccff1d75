"""Adding the pages to the application (called by ``api.app.create_app``)."""

from __future__ import annotations

import inspect

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quatrix_mfa.api.errors import note_outage
from quatrix_mfa.core.context import Core
from quatrix_mfa.core.errors import StoreUnavailable
from quatrix_mfa.web import (
    account,
    account_2fa,
    account_pin,
    account_sessions,
    admin_audit,
    admin_settings,
    admin_totp,
    admin_user,
    admin_users,
    devices,
    email_change,
    i18n,
    login,
    passwords,
    recovery,
    security,
)
from quatrix_mfa.web.page import Web, render_page
from quatrix_mfa.web.security import CookiePolicy

# Paths whose errors stay the JSON API's ErrorModel (or Starlette's for files).
NOT_PAGES = ("/api/", "/static/")
# Errors a person meets by typing or following a link get a page (page_error.html).
PAGE_ERRORS = frozenset({404, 405})


def install(app: FastAPI, core: Core, *, public_url: str) -> None:
    """The pages, their stylesheet under ``/static``, and the cookie policy
    the public URL calls for."""
    app.state.web = Web(core, CookiePolicy.for_public_url(public_url))
    # admin_users first: its /admin/users/actions is matched before
    # admin_user's /admin/users/{id} (which declares /admin/users/new first).
    for module in (
        login,
        account,
        account_2fa,
        account_pin,
        account_sessions,
        passwords,
        admin_users,
        admin_user,
        admin_settings,
        admin_totp,
        admin_audit,
        email_change,
        recovery,
        devices,
    ):
        app.include_router(module.router)
    files = StaticFiles(packages=[("quatrix_mfa.web", "static")])
    app.mount("/static", WithHeaders(files, security.PAGE_HEADERS), name="static")


def install_error_pages(app: FastAPI) -> None:
    """A 404 or 405 on a page path answers an HTML page with the page
    headers, and so does a database that cannot answer now (503); every other
    error, and any under :data:`NOT_PAGES`, goes to the handler installed
    before (the API's, ``api.errors``). Call it after that."""
    earlier = app.exception_handlers[HTTPException]

    async def page_or_earlier(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        if error.status_code not in PAGE_ERRORS or request.url.path.startswith(NOT_PAGES):
            answer = earlier(request, error)
            return await answer if inspect.isawaitable(answer) else answer
        locale = i18n.negotiate(request.headers.get("accept-language"))
        headers = {
            **security.PAGE_HEADERS,
            **security.NO_STORE,
            **(error.headers or {}),  # a 405's Allow
            "Content-Language": locale,
        }
        body = render_page("page_error.html", locale, status=error.status_code)
        return HTMLResponse(body, error.status_code, headers=headers)

    app.add_exception_handler(HTTPException, page_or_earlier)

    api_unavailable = app.exception_handlers[StoreUnavailable]

    async def unavailable_page(request: Request, error: Exception) -> Response:
        """The database away: a page saying to try again in a moment (503
        with Retry-After, RFC 9110 §15.6.4); the API's paths keep the ErrorModel."""
        assert isinstance(error, StoreUnavailable)
        if request.url.path.startswith(NOT_PAGES):
            answer = api_unavailable(request, error)
            return await answer if inspect.isawaitable(answer) else answer
        note_outage(error)
        locale = i18n.negotiate(request.headers.get("accept-language"))
        headers = {
            **security.PAGE_HEADERS,
            **security.NO_STORE,
            "Retry-After": str(StoreUnavailable.RETRY_AFTER_SECONDS),
            "Content-Language": locale,
        }
        body = render_page("page_error.html", locale, status=503)
        return HTMLResponse(body, 503, headers=headers)

    app.add_exception_handler(StoreUnavailable, unavailable_page)


class WithHeaders:
    """Adds ``headers`` to every answer of ``app`` (the static files: a
    stylesheet is sniffed and framed like any page if nothing says not to)."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *self.headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
