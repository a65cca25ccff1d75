"""The HTTP/1.1 protocol ``quatrix-mfa serve`` runs: uvicorn's httptools one,
with a bound on the request head and ErrorModel answers for bad requests,
a time bound on each request's arrival, and no keep-alive while draining.

httptools buffers the request line and header fields without any limit: one
client sending a 1 GiB header would make the process hold 1 GiB before the
app sees anything. Here a head still incomplete after ``MAX_HEAD`` bytes is
answered 431 and the connection closed. Smaller heads reach the app, whose
own limit (``limits.MAX_HEADER_BYTES``) answers with an ErrorModel too.

uvicorn bounds only the idle time *between* requests on a connection. A
request that starts and never ends (a chunked body without its last chunk, a
Content-Length never reached, a head sent a byte a minute) held its
connection and its ASGI task for ever, as did a connection that never sends
a byte. Here the whole request, head and body, must arrive within
``body_timeout`` seconds of its first byte (else 408 and the connection is
closed, RFC 9110 section 15.5.9), and a new connection that sends nothing is
closed after the keep-alive bound, like an idle one.
"""

from __future__ import annotations

import asyncio
import http
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from quatrix_mfa import logs, observe
from quatrix_mfa.api import draining
from quatrix_mfa.api.limits import MAX_HEADER_BYTES, error_body
from quatrix_mfa.api.observing import PROTOCOL_ANSWER, Recorder

MAX_HEAD = 2 * MAX_HEADER_BYTES  # request line and headers, as sent
DEFAULT_BODY_TIMEOUT = 10.0


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing request heads over ``MAX_HEAD``
    bytes and requests that do not arrive within ``body_timeout`` seconds."""

    def __init__(self, *args: Any, body_timeout: float = DEFAULT_BODY_TIMEOUT, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.body_timeout = body_timeout
        self.arrival: asyncio.TimerHandle | None = None
        self.requests_begun = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.head_bytes = 0
        self.in_head = True
        super().connection_made(transport)
        # A connection that never sends a byte is idle: the keep-alive bound.
        self.arrival = self.loop.call_later(self.timeout_keep_alive, self.transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.requests_begun += 1
        self._disarm()
        self.arrival = self.loop.call_later(self.body_timeout, self.arrival_timed_out)

    def arrival_timed_out(self) -> None:
        """The request has not fully arrived in time: 408 unless an answer has
        begun (then the connection just closes), and free the connection."""
        self.arrival = None
        if self.transport.is_closing():
            return
        current = None if self.in_head else self.cycle
        if current is not None and current.response_started:
            self.transport.close()
        else:
            self.answer(408, "Request not received in time")

    def _disarm(self) -> None:
        if self.arrival is not None:
            self.arrival.cancel()
            self.arrival = None

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
        if draining.active() and self.cycle is not None:
            # Answer with "Connection: close": the client's next request opens
            # a new connection, which reaches another node once this one stops
            # accepting; closing an idle kept-alive connection instead could
            # cross a request already on its way (a proxy's POST, lost).
            self.cycle.keep_alive = False

    def on_message_complete(self) -> None:
        self.in_head, self.head_bytes = True, 0  # a pipelined request may follow
        self._disarm()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """Unparseable HTTP (a NUL in a header, a bad request line): ErrorModel too."""
        self.answer(400, msg)

    def answer(self, status: int, msg: str) -> None:
        """An ErrorModel for a request the app did not answer, with the headers
        the app's answers have (no-store, an X-Request-Id); then the connection
        closes. A request whose head the app has (its body never came whole,
        or could not be parsed) keeps the id the app gave it, and the app's
        request line says this status; any other is logged here, a new id."""
        scope: dict[str, Any] | None = None
        if not self.in_head and self.cycle is not None and not self.cycle.response_started:
            scope = self.cycle.scope  # type: ignore[assignment] # uvicorn's TypedDict, a dict
        # The app's id for a request it has (or is about to begin): its log
        # line is the one that says this answer.
        chosen = observe.request_id_from(None) if scope is None else Recorder.id_for(scope)
        info = observe.RequestInfo(chosen)
        if scope is not None:
            scope[PROTOCOL_ANSWER] = (status, info.request_id)
        payload = error_body(msg)
        head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode()]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(payload),
            b"cache-control: no-store\r\n",
            b"x-request-id: %s\r\n" % info.request_id.encode(),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + payload)
        self.transport.close()
        if scope is None:  # no request line of the app's will say it: "-" for method and route
            logs.request_line("-", "-", status, 0.0, self.client[0] if self.client else None, info)
