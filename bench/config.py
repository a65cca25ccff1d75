"""Where the benchmark runs and with what: paths, ports, CPUs, modes, and its log line.

``RUN`` (the folder every run writes to) is pointed elsewhere by ``bench.py
--profile``: read it as ``config.RUN`` at call time, never import it by name.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work"
RUN = WORK / "run"
VENV = ROOT / ".venv" / "bin"
PI_VENV = WORK / "pi"
PI_DATA = WORK / "pi-data"
PI_POOL = 1000  # users with TOTP tokens set up in privacyIDEA (kept between runs)
PI_USABLE = 990  # slices rotate over these; the last 10 are for counting statements
PI_SLICE = 240
SERVER_CPU, LOAD_CPU, ALL_CPUS = "0", "1", "0,1"
OURS, FLOOR, PI, REF = 8901, 8902, 8903, 8904
PG = "postgresql://postgres@127.0.0.1:5432/"
CONCURRENCY = (1, 16, 64)
# quatrix-mfa and the floor: one worker (one event loop) for the one CPU they run
# on; a second worker there only contends for it and for SQLite's write lock
# (bench/analysis.md). privacyIDEA: gunicorn with 2 sync workers, as the issue sets.
WORKERS = 1
PI_WORKERS = 2
SERVER_ENV = {
    # The benchmark sends thousands of wrong codes from one address on purpose.
    "QUATRIX_MFA_ADDRESS_FAILURE_THRESHOLD": "100000",
    "QUATRIX_MFA_USER_FAILURE_THRESHOLD": "1000",
    # Seeded full sessions must not idle out between seeding and their run.
    "QUATRIX_MFA_SESSION_IDLE_SECONDS": "86400",
    "QUATRIX_MFA_SESSION_MAX_SECONDS": "86400",
}


@dataclass(frozen=True)
class Mode:
    name: str
    duration: int  # seconds per timed run
    main_users: int
    big_users: int
    scale_requests: int  # valid checks per scale round (the small database has this many users)
    scale_rounds: int  # the two sizes take turns this many times; percentiles pool the rounds
    scale_seconds: int  # GET /profile per scale round


SHORT = Mode("short", 3, 24_000, 5_000, 300, 1, 3)
FULL = Mode("full", 10, 160_000, 1_000_000, 1000, 5, 4)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def two_trees(parser: argparse.ArgumentParser) -> None:
    """The A/B scripts' two source trees: ``before`` (another checkout's
    ``src``, ``git worktree add --detach /tmp/before <commit>``) and ``after``
    (this checkout's, unless given)."""
    parser.add_argument("before")
    parser.add_argument("after", nargs="?", default=str(ROOT / "src"))
