"""The people's side: server-rendered pages over ``core``, beside ``api/``.

Handlers are thin (read the form, call core with a ``Channel.WEB`` context,
render); every rule of the contract stays in core. :func:`install` adds the
pages, the stylesheet and the browser-session settings to the app.
"""

from quatrix_mfa.web.app import install, install_error_pages

__all__ = ["install", "install_error_pages"]
