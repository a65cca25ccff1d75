"""Request limits, before any parsing: header size and count (431), body size
(413), a body that is not UTF-8 or nests JSON too deep (400)."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quatrix_mfa.api.caching import no_store
from quatrix_mfa.api.errors import error_model
from quatrix_mfa.core.errors import ErrorCode

MAX_BODY = 64 * 1024
MAX_DEPTH = 32
MAX_HEADERS = 100  # header fields, like Apache's LimitRequestFields
MAX_HEADER_BYTES = 32 * 1024  # all of them, like nginx's large_client_header_buffers


def headers_too_large(headers: list[tuple[bytes, bytes]]) -> bool:
    size = sum(len(name) + len(value) + 4 for name, value in headers)  # "name: value\r\n"
    return len(headers) > MAX_HEADERS or size > MAX_HEADER_BYTES


def error_body(msg: str, details: dict[str, Any] | None = None) -> bytes:
    """A parameter-error ErrorModel (code 2), for answers sent before the app runs."""
    return json.dumps(error_model(int(ErrorCode.PARAMETER), msg, details)).encode()


def too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """True if brackets nest deeper than ``limit`` (outside strings)."""
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


class BodyLimit:
    """Refuse too many or too large headers; buffer at most ``MAX_BODY`` bytes of a
    request body and refuse more, a body that is not UTF-8, or too deep JSON."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if headers_too_large(scope["headers"]):
            limit = f"at most {MAX_HEADERS} fields and {MAX_HEADER_BYTES} bytes"
            await _refuse(send, 431, "Request headers too large", {"headers": limit})
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _refuse(
                send, 413, "Request body too large", {"body": f"at most {self.max_body} bytes"}
            )
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _refuse(
                    send, 413, "Request body too large", {"body": f"at most {self.max_body} bytes"}
                )
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:  # JSON is UTF-8 (RFC 8259); UTF-16 would also slip past ``too_deep``
            body.decode("utf-8")
        except UnicodeDecodeError:
            await _refuse(send, 400, "Parameter error", {"body": "not UTF-8"})
            return
        if too_deep(body):
            await _refuse(
                send, 400, "Parameter error", {"body": f"JSON nested deeper than {MAX_DEPTH}"}
            )
            return
        await self.app(scope, replaying(body, receive), send)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the app ``body``, already read, as the whole
    request body, then passes on to the client's (a disconnect)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _refuse(send: Send, status: int, msg: str, details: dict[str, Any]) -> None:
    """An ErrorModel answer, not to be stored (``no-store``) on any path: the
    pages' paths too, which NoStore (api/caching.py) does not cover."""
    payload = error_body(msg, details)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": no_store(
                [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ]
            ),
        }
    )
    await send({"type": "http.response.body", "body": payload})
