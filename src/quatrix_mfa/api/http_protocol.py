"""The HTTP/1.1 protocol ``quatrix-mfa serve`` runs: uvicorn's httptools one,
with a bound on the request head and ErrorModel answers for bad requests.

httptools buffers the request line and header fields without any limit: one
client sending a 1 GiB header would make the process hold 1 GiB before the
app sees anything. Here a head still incomplete after ``MAX_HEAD`` bytes is
answered 431 and the connection closed. Smaller heads reach the app, whose
own limit (``limits.MAX_HEADER_BYTES``) answers with an ErrorModel too.
"""

from __future__ import annotations

import asyncio
import http

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from quatrix_mfa.api.limits import MAX_HEADER_BYTES, error_body

MAX_HEAD = 2 * MAX_HEADER_BYTES  # request line and headers, as sent


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing request heads over ``MAX_HEAD`` bytes."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.head_bytes = 0
        self.in_head = True
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if self.in_head:
            self.head_bytes += len(data)
        super().data_received(data)
        # Checked after parsing: ``data`` may end the head and carry the body too.
        if self.in_head and self.head_bytes > MAX_HEAD and not self.transport.is_closing():
            self.answer(431, "Request headers too large")

    def on_headers_complete(self) -> None:
        self.in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.in_head, self.head_bytes = True, 0  # a pipelined request may follow
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """Unparseable HTTP (a NUL in a header, a bad request line): ErrorModel too."""
        self.answer(400, msg)

    def answer(self, status: int, msg: str) -> None:
        payload = error_body(msg)
        head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode()]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(payload),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + payload)
        self.transport.close()
