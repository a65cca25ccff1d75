"""In-process A/B of the hot paths: CPU per request through the whole ASGI
app, with and without ``api/hot.py`` in front of FastAPI's router,
alternating blocks of requests in one process (this box's speed moves by tens
of percent within minutes; alternating, both sides share its moods).

    .venv/bin/python bench/hotpath.py [--rounds 8] [--block 300] [--log json|text|off]

``GET /api/1.0/profile`` (the session check) and ``POST /api/1.0/session/login``
with a valid TOTP code (the second factor; each request its own seeded user's
pending session). No HTTP server, no network: this measures our code and the
framework's, not uvicorn's (``bench/run`` measures the whole server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import seed  # noqa: E402 - bench/ is not a package
from workload import totp  # noqa: E402

REPORT = sys.stderr  # stdout takes the request log lines (to /dev/null)
Request = tuple[dict[str, Any], bytes]


def _app(hot: bool) -> FastAPI:
    from quatrix_mfa.api.app import create_app
    from quatrix_mfa.settings import Settings

    return create_app(Settings.from_env(), background=False, hot_paths=hot)


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"user-agent", b"wrk"), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
    }


def profile_requests(rows: list[list[str]]) -> Iterator[Request]:
    scopes = [_scope("GET", "/api/1.0/profile", [(b"x-auth-token", r[3].encode())]) for r in rows]
    while True:  # reading uses nothing up
        for scope in scopes:
            yield scope, b""


def verify_requests(
    rows: list[list[str]], code: Callable[[str, int], str] = totp
) -> Iterator[Request]:
    """The second factor on each row's pending session, once each, with
    ``code(secret, step)`` (a valid code by default)."""
    step = int(time.time() // 30)
    for _email, secret, pending, _full in rows:  # each pending session once
        body = json.dumps({"auth_type": "2FA", "code": code(secret, step)}).encode()
        headers = [
            (b"x-auth-token", pending.encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        yield _scope("POST", "/api/1.0/session/login", headers), body


async def cpu_per_request(
    app: Any, requests: Iterator[Request], count: int, statuses: list[int]
) -> float:
    """Seconds of CPU per request over ``count`` of ``requests``, each through
    the whole ASGI app; the answers' statuses are added to ``statuses``."""

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started = time.process_time()
    for _ in range(count):
        scope, body = next(requests)

        async def receive(body: bytes = body) -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        await app(dict(scope, state={}), receive, send)
    return (time.process_time() - started) / count


def seeded_rows(users: int, prefix: str) -> list[list[str]]:
    """``users`` seeded users (email, TOTP secret, pending and full session
    tokens) in a new data folder, which this process's settings name from
    now on; the address limit is lifted, as every request comes from one."""
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(
        QUATRIX_MFA_DATA_DIR=str(data_dir),
        QUATRIX_MFA_ADDRESS_FAILURE_THRESHOLD="100000",
    )
    from quatrix_mfa.settings import Settings

    seed.seed(Settings.from_env(), users, users, data_dir / "users.tsv")
    return [line.split("\t") for line in (data_dir / "users.tsv").read_text().splitlines()]


def log_to_devnull(log_format: str) -> None:
    """Log as serve does, a line a request, into /dev/null (stdout)."""
    from quatrix_mfa import logs

    sys.stdout.flush()
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    logs.configure(log_format, "info")


async def _measure(
    apps: dict[str, FastAPI], work: dict[str, Iterator[Request]], rounds: int, block: int
) -> dict[str, list[float]]:
    statuses: list[int] = []

    async def run(app: FastAPI, requests: Iterator[Request], count: int) -> float:
        return await cpu_per_request(app, requests, count, statuses)

    per: dict[str, list[float]] = {name: [] for name in apps}
    for name, app in apps.items():
        await run(app, work[name], 50)  # warm-up
    for _ in range(rounds):
        for name, app in apps.items():
            per[name].append(await run(app, work[name], block))
    if set(statuses) != {200}:
        raise SystemExit(f"unexpected answers: {sorted(set(statuses))}")
    return per


def _report(what: str, per: dict[str, list[float]]) -> None:
    base = statistics.median(per["router"])
    for name, values in per.items():
        median = statistics.median(values)
        print(
            f"{what:8} {name:7} median {median * 1e6:6.1f} µs CPU a request "
            f"(rounds {min(values) * 1e6:.1f}-{max(values) * 1e6:.1f}), "
            f"{base / median:.2f}x the router's rate",
            file=REPORT,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--block", type=int, default=300)
    parser.add_argument("--log", choices=("json", "text", "off"), default="json")
    args = parser.parse_args()
    rows = seeded_rows(2 * (args.rounds * args.block + 50), "qmfa-hotpath-")
    if args.log != "off":
        log_to_devnull(args.log)
    apps = {"router": _app(hot=False), "hot": _app(hot=True)}
    half = len(rows) // 2
    sides = {"router": rows[:half], "hot": rows[half:]}
    work = {name: profile_requests(sides[name][:1000]) for name in apps}
    _report("profile", asyncio.run(_measure(apps, work, args.rounds, args.block)))
    work = {name: verify_requests(sides[name]) for name in apps}
    _report("verify", asyncio.run(_measure(apps, work, args.rounds, args.block)))


if __name__ == "__main__":
    main()
