"""The floor: a bare ASGI endpoint, served by the same uvicorn stack and worker count.

It reads the request body (if any) and answers a small JSON document, like
the smallest answer quatrix-mfa gives; nothing else happens per request.
"""

from __future__ import annotations

from typing import Any

BODY = b'{"session_id":"00000000-0000-4000-8000-000000000000"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
