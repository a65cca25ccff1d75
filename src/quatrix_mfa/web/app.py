"""Adding the pages to the application (called by ``api.app.create_app``)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from quatrix_mfa.core.context import Core
from quatrix_mfa.web import account, account_2fa, account_pin, account_sessions, login, passwords
from quatrix_mfa.web.page import Web
from quatrix_mfa.web.security import CookiePolicy


def install(app: FastAPI, core: Core, *, public_url: str) -> None:
    """The pages, their stylesheet under ``/static``, and the cookie policy
    the public URL calls for."""
    app.state.web = Web(core, CookiePolicy.for_public_url(public_url))
    for module in (login, account, account_2fa, account_pin, account_sessions, passwords):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(packages=[("quatrix_mfa.web", "static")]), name="static")
