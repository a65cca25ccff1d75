"""The purge's look-up of expired sessions at scale, with and without the index
on ``sessions.last_seen`` (migration 0010), taking turns on one database.

Seeds ``--users`` users (two sessions each: bench/seed.py) on SQLite and on
PostgreSQL (``--engines``), then alternates: the index dropped, the
look-up timed ``--repeat`` times; the index made again, timed again. The
look-up is the session repository's ``expired``, as the minute's purge runs it;
nothing is expired, so each run answers an empty list (the usual case).

Usage: bench/purge_lookup.py [--users 500000] [--rounds 3] [--repeat 5]
                             [--engines sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from config import VENV
from sqlalchemy import text

from quatrix_mfa.api.app import build_core
from quatrix_mfa.core.context import Core
from quatrix_mfa.settings import Settings
from servers import drop_pg, fresh_pg

INDEX = "ix_sessions_last_seen"


def timed_lookups(core: Core, repeat: int) -> list[float]:
    """Milliseconds of each of ``repeat`` look-ups, as the purge makes them."""
    idle = float(core.sessions.idle_seconds)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        with core.store.transaction(write=False) as tx:
            found = tx.sessions.expired(core.clock.now(), idle)
        times.append((time.perf_counter() - started) * 1000)
        assert found == [], "a fresh seed has no expired session"
    return times


def set_index(core: Core, present: bool) -> None:
    engine = core.store.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        if present:
            conn.execute(text(f"CREATE INDEX {INDEX} ON sessions (last_seen)"))
        else:
            conn.execute(text(f"DROP INDEX {INDEX}"))
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE sessions"))
    # psycopg prepares a statement on the server after a few runs, and
    # PostgreSQL then keeps choosing between its plans by what the runs cost
    # before the index came or went: new connections start the measure afresh.
    engine.dispose()


def measure(name: str, url: str, users: int, rounds: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="purge-lookup-") as folder:
        data_dir = Path(folder)
        cmd = [str(VENV / "python"), str(Path(__file__).parent / "seed.py")]
        cmd += ["--data-dir", str(data_dir), "--users", str(users), "--export", "1"]
        cmd += ["--out", str(data_dir / "users.tsv")]
        if url:
            cmd += ["--database-url", url]
        subprocess.run(cmd, check=True)
        core = build_core(Settings(data_dir=data_dir, database_url=url))
        runs: dict[bool, list[float]] = {False: [], True: []}
        try:
            for _ in range(rounds):
                for present in (False, True):
                    set_index(core, present)
                    timed_lookups(core, 1)  # the first reads pages in
                    runs[present] += timed_lookups(core, repeat)
        finally:
            core.store.dispose()  # type: ignore[attr-defined]
        without, with_ = statistics.median(runs[False]), statistics.median(runs[True])
        print(
            f"{name}, {2 * users:,} sessions: look-up without the index {without:.2f} ms, "
            f"with it {with_:.3f} ms (median of {rounds * repeat} each): "
            f"{without / with_:,.0f}x less"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    engines = args.engines.split(",")
    if "sqlite" in engines:
        measure("SQLite", "", args.users, args.rounds, args.repeat)
    if "postgresql" in engines:
        url = fresh_pg("bench_qmfa_purge")
        try:
            measure("PostgreSQL", url, args.users, args.rounds, args.repeat)
        finally:
            drop_pg("bench_qmfa_purge")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
