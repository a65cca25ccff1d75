"""SQL statements and transactions per request of quatrix-mfa, counted in-process."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import seed as seeding
from workload import Users, totp, wrong_code


def count_statements(data_dir: Path, database_url: str, users: Users) -> dict[str, Any]:
    """SQL statements and transactions per request, counted in-process on one app."""
    from fastapi.testclient import TestClient
    from sqlalchemy import event

    from quatrix_mfa.api.app import create_app
    from quatrix_mfa.settings import Settings

    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        address_failure_threshold=100000,
        user_failure_threshold=1000,
        session_idle_seconds=86400,
    )
    app = create_app(settings, background=False)
    engine = app.state.core.store.engine
    seen: dict[str, int] = {"statements": 0, "transactions": 0}

    def on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.startswith("BEGIN"):
            seen["statements"] += 1

    def on_begin(conn: Any) -> None:
        seen["transactions"] += 1

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "begin", on_begin)
    rows = users.take(40)
    out: dict[str, Any] = {}
    with TestClient(app, base_url="http://127.0.0.1/api/1.0") as client:
        for row in rows[:10]:  # first touch of each full session (once a minute)
            client.get("/profile", headers={"X-Auth-Token": row[3]})

        def measure(name: str, expect: int, calls: list[Any]) -> None:
            seen.update(statements=0, transactions=0)
            for call in calls:
                status = call().status_code
                assert status == expect, (name, status)
            out[name] = {k: v / len(calls) for k, v in seen.items()}

        measure(
            "GET /profile",
            200,
            [lambda r=r: client.get("/profile", headers={"X-Auth-Token": r[3]}) for r in rows[:10]],
        )
        step = int(time.time() // 30)

        def second_factor(rows: list[list[str]], code: Any) -> list[Any]:
            """One POST /session/login per pending session, with ``code(secret, step)``."""
            return [
                lambda r=r: client.post(
                    "/session/login",
                    headers={"X-Auth-Token": r[2]},
                    json={"auth_type": "2FA", "code": code(r[1], step)},
                )
                for r in rows
            ]

        measure("POST /session/login (valid TOTP)", 200, second_factor(rows[10:20], totp))
        measure("POST /session/login (wrong code)", 401, second_factor(rows[20:30], wrong_code))
        measure(
            "GET /session/login (password, 207)",
            207,
            [
                lambda r=r: client.get("/session/login", auth=(r[0], seeding.PASSWORD))
                for r in rows[30:35]
            ],
        )
    return out
