"""How the admin console's user list scales: 100,000 users, first page, a
deep page by cursor, searches and the force-2FA impact, on SQLite (and on
PostgreSQL when given a server URL), side by side.

Users go in by batched inserts straight into the tables (no argon2, no
mail); a third hold a TOTP credential. Every measurement calls the core use
case (``directory.find_users``, ``site.mfa_impact``) as the page handler
does, with an administrator's context; each is run ``--rounds`` times and
the median and best are reported in milliseconds.

Usage: bench/admin_users.py [--users 100000] [--rounds 20]
       [--postgresql postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
With ``--postgresql`` a fresh database is created on that server for the
run and dropped afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url

from quatrix_mfa.api.app import build_core
from quatrix_mfa.core import directory, site
from quatrix_mfa.core.bootstrap import bootstrap
from quatrix_mfa.core.context import Channel, Context, Core
from quatrix_mfa.core.model import TOTP_KIND, SessionKind, SessionRecord
from quatrix_mfa.core.sessions import Caller
from quatrix_mfa.settings import Settings
from quatrix_mfa.storage import migrate, tables
from quatrix_mfa.storage.store import SqlStore

BATCH = 5000
ADMIN = "admin@bench.example"


def fill(core: Core, account_id: str, count: int) -> float:
    """``count`` users by batched inserts; returns the seconds it took."""
    store = core.store
    assert isinstance(store, SqlStore)
    now = core.clock.now()
    started = time.perf_counter()
    with store.engine.begin() as conn:
        for first in range(0, count, BATCH):
            users, creds = [], []
            for n in range(first, min(first + BATCH, count)):
                user_id = str(uuid.uuid4())
                users.append(
                    {
                        "id": user_id,
                        "account_id": account_id,
                        "email": f"user{n:07d}@bench.example",
                        "name": f"Person {n}",
                        "created": now,
                        "modified": now,
                        "super_admin": False,
                        "status": "D" if n % 50 == 0 else "A",
                        "language": "eng",
                        "password_hash": None,
                        "twofa_active": n % 2 == 0,
                        "twofa_forced": n % 7 == 0,
                        "pin_forced": False,
                        "last_login": None,
                    }
                )
                if n % 3 == 0:
                    creds.append(
                        {
                            "id": str(uuid.uuid4()),
                            "user_id": user_id,
                            "kind": TOTP_KIND,
                            "secret": b"bench",
                            "key_id": "bench",
                            "created": now,
                        }
                    )
            conn.execute(insert(tables.users), users)
            conn.execute(insert(tables.credentials), creds)
        conn.execute(text("ANALYZE"))  # the planner sees the table as it now is
    return time.perf_counter() - started


def admin_context(core: Core) -> Context:
    with core.store.transaction(write=False) as tx:
        user = tx.users.by_email(ADMIN)
        assert user is not None
        account = tx.accounts.get(user.account_id)
    assert account is not None
    now = core.clock.now()
    session = SessionRecord("bench", user.id, now, now, now + 3600, kind=SessionKind.BROWSER)
    return Context(Caller("bench", "bench", session, user, account), None, now, Channel.WEB)


def timed(work: Callable[[], Any], rounds: int) -> tuple[float, float]:
    """(median, best) milliseconds of ``rounds`` runs after one warm-up."""
    work()
    runs = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs), min(runs)


def by_offset(core: Core, ctx: Context, skip: int) -> None:
    """What paging by OFFSET would cost for the same deep page: the database
    reads and drops every row before it (for comparison; never used)."""
    store = core.store
    assert isinstance(store, SqlStore)
    account_id = ctx.signed_in.account.id
    query = (
        select(tables.users.c.id)
        .where(tables.users.c.account_id == account_id)
        .order_by(tables.users.c.email, tables.users.c.id)
        .offset(skip)
        .limit(51)
    )
    with store.engine.connect() as conn:
        assert len(conn.execute(query).all()) == 51


def measure(core: Core, rounds: int, count: int) -> dict[str, tuple[float, float]]:
    ctx = admin_context(core)
    everyone = directory.UserFilter()
    with core.store.transaction(write=False) as tx:
        deep = tx.users.by_email(f"user{int(count * 0.9):07d}@bench.example")
    assert deep is not None
    cursor = directory.user_cursor(deep)
    page = 50
    some = f"user{count // 2:07d}"[:-2]  # the middle user's hundred

    def check(found: directory.Page[Any], rows: int) -> None:
        assert len(found.rows) == rows, len(found.rows)

    cases: dict[str, Callable[[], Any]] = {
        "first page": lambda: check(directory.find_users(core, ctx, everyone, None, page), page),
        "deep page (90%, by cursor)": lambda: check(
            directory.find_users(core, ctx, everyone, cursor, page), page
        ),
        "search by email (100 match)": lambda: check(
            directory.find_users(core, ctx, directory.UserFilter(some), None, page), page
        ),
        "search 'nobody' (none: every row read)": lambda: check(
            directory.find_users(core, ctx, directory.UserFilter("nobody"), None, page), 0
        ),
        "filter 2FA 'enroll'": lambda: check(
            directory.find_users(core, ctx, directory.UserFilter(two_factor="enroll"), None, page),
            page,
        ),
        "force-2FA impact (counts + first 1,000)": lambda: site.mfa_impact(core, ctx),
        "(not used) the deep page by OFFSET": lambda: by_offset(core, ctx, int(count * 0.9)),
    }
    return {name: timed(work, rounds) for name, work in cases.items()}


def run(settings: Settings, count: int, rounds: int) -> tuple[float, dict[str, Any]]:
    migrate.upgrade(settings.effective_database_url)
    core = build_core(settings)
    created = bootstrap(core, ADMIN, "Bench", None)
    seconds = fill(core, created.account.id, count)
    try:
        return seconds, measure(core, rounds, count)
    finally:
        core.store.dispose()  # type: ignore[attr-defined]


def fresh_postgresql(server_url: str) -> tuple[str, Callable[[], None]]:
    """A new database on the server of ``server_url``, and how to drop it."""
    name = f"qmfa_bench_admin_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(server_url).set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--postgresql", default="", help="a PostgreSQL server URL")
    args = parser.parse_args()
    results: dict[str, tuple[float, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        sqlite = Settings(data_dir=Path(folder) / "sqlite")
        sqlite.data_dir.mkdir()
        results["SQLite"] = run(sqlite, args.users, args.rounds)
        if args.postgresql:
            url, drop = fresh_postgresql(args.postgresql)
            try:
                pg = Settings(data_dir=Path(folder) / "pg", database_url=url)
                pg.data_dir.mkdir()
                results["PostgreSQL"] = run(pg, args.users, args.rounds)
            finally:
                drop()
    kinds = list(results)
    print(f"{args.users:,} users; median / best of {args.rounds} runs, milliseconds\n")
    print("| | " + " | ".join(kinds) + " |")
    print("|---|" + "---:|" * len(kinds))
    print("| fill (s) | " + " | ".join(f"{results[k][0]:.1f}" for k in kinds) + " |")
    for case in results[kinds[0]][1]:
        cells = [f"{results[k][1][case][0]:.2f} / {results[k][1][case][1]:.2f}" for k in kinds]
        print(f"| {case} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
