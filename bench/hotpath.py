"""In-process A/B of the session check: CPU per ``GET /api/1.0/profile``
through the whole ASGI app, with and without ``api/hot.py`` in front of the
router, alternating blocks of requests in one process (this box's speed moves
by tens of percent within minutes; alternating, both sides share its moods).

    .venv/bin/python bench/hotpath.py [--rounds 10] [--block 500] [--log json]

No HTTP server and no network: what it measures is our code and the
framework's, not uvicorn's parsing (``bench/run`` measures the whole server).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI

REPORT = sys.stderr  # stdout takes the request log lines (to /dev/null)
EMAIL, PASSWORD = "bench@example.com", "correct horse battery staple 9"


def _app(data_dir: Path, hot: bool) -> FastAPI:
    from quatrix_mfa.api.app import create_app
    from quatrix_mfa.api.hot import HotRoutes
    from quatrix_mfa.settings import Settings

    app = create_app(Settings.from_env(), background=False)
    if not hot:  # the stack is built at the first request: drop the layer before it
        app.user_middleware = [m for m in app.user_middleware if m.cls is not HotRoutes]
    return app


def _scope(path: str, token: str) -> dict[str, Any]:
    headers = [(b"host", b"bench"), (b"x-auth-token", token.encode()), (b"user-agent", b"wrk")]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
    }


async def _measure(apps: dict[str, FastAPI], token: str, rounds: int, block: int) -> None:
    scope = _scope("/api/1.0/profile", token)
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def run(app: FastAPI, count: int) -> float:
        started = time.process_time()
        for _ in range(count):
            await app(dict(scope, state={}), receive, send)
        return (time.process_time() - started) / count

    for app in apps.values():
        await run(app, 200)  # warm-up
    per: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(rounds):
        for name, app in apps.items():
            per[name].append(await run(app, block))
    if set(statuses) != {200}:
        raise SystemExit(f"unexpected answers: {sorted(set(statuses))}")
    base = statistics.median(per["router"])
    for name, values in per.items():
        median = statistics.median(values)
        print(
            f"{name:7} median {median * 1e6:6.1f} µs CPU a request "
            f"(rounds {min(values) * 1e6:.1f}-{max(values) * 1e6:.1f}), "
            f"{base / median:.2f}x the router's rate",
            file=REPORT,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--block", type=int, default=500)
    parser.add_argument("--log", choices=("json", "text", "off"), default="json")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="qmfa-hotpath-"))
    os.environ.update(
        QUATRIX_MFA_DATA_DIR=str(data_dir),
        QUATRIX_MFA_ARGON2_TIME_COST="1",
        QUATRIX_MFA_ARGON2_MEMORY_KIB="64",
    )
    cli = Path(sys.executable).with_name("quatrix-mfa")
    subprocess.run(
        [str(cli), "init", "--email", EMAIL, "--password-stdin"],
        input=f"{PASSWORD}\n".encode(),
        check=True,
        capture_output=True,
    )
    if args.log != "off":  # as serve logs: a line a request, here to /dev/null
        from quatrix_mfa import logs

        sys.stdout.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        logs.configure(args.log, "info")
    apps = {"router": _app(data_dir, hot=False), "hot": _app(data_dir, hot=True)}
    token = asyncio.run(_login(apps["router"]))
    asyncio.run(_measure(apps, token, args.rounds, args.block))


async def _login(app: FastAPI) -> str:
    import httpx

    basic = base64.b64encode(f"{EMAIL}:{PASSWORD}".encode()).decode()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        answer = await client.get(
            "/api/1.0/session/login", headers={"Authorization": f"Basic {basic}"}
        )
        return answer.headers["X-Auth-Token"]


if __name__ == "__main__":
    main()
