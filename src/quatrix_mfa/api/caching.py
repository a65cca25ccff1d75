"""No API answer may be kept by a cache.

Answers carry session ids, TOTP secrets and recovery codes, and the caller's
credential is the ``X-Auth-Token`` header, which HTTP caches do not treat like
``Authorization`` (RFC 9111 §3.5): a shared cache with a default lifetime
could store a secret and replay it to the next caller. So every answer under
the API's prefix says ``Cache-Control: no-store``, errors included.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_CACHE_CONTROL = b"cache-control"
_NO_STORE = (_CACHE_CONTROL, b"no-store")


def no_store(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``Cache-Control: no-store`` added, unless they set their own."""
    for name, _ in headers:
        if name.lower() == _CACHE_CONTROL:
            return headers
    return [*headers, _NO_STORE]


class NoStore:
    """Adds ``Cache-Control: no-store`` to every answer whose path starts with
    ``prefix`` and that does not set its own."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": no_store(list(message.get("headers", ())))}
            await send(message)

        await self.app(scope, receive, send_no_store)
