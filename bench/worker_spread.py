"""How ``serve --workers 2`` spreads a client's connections, two source trees
taking turns: 16 kept-alive connections opened at once (wrk, GET /profile),
counted per worker with ``ss`` while they run, and the requests a second.

    .venv/bin/python bench/worker_spread.py BEFORE_SRC [AFTER_SRC] [--restarts 5] [--trials 3]

Each restart of each tree starts the server afresh (on both CPUs, wrk sharing
CPU 1) and runs ``--trials`` 2-second loads; a trial whose 16 connections all
landed on one worker shows as ``[16]``.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import config
from config import ALL_CPUS, OURS
from workload import profile_lines, seed_db, write_requests, wrk

from servers import ours


def split() -> list[int]:
    """Established connections on the server's port, per process, fewest first."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{OURS} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pids = [part.split("pid=")[1].split(",")[0] for part in out.split() if "pid=" in part]
    return sorted(collections.Counter(pids).values())


def _load(result: dict[str, Any], requests: Path, label: str) -> None:
    result.update(wrk(OURS, requests, 16, 2, cycle=True, label=label))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    config.two_trees(parser)
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    config.RUN = config.WORK / "worker-spread"
    shutil.rmtree(config.RUN, ignore_errors=True)
    config.RUN.mkdir(parents=True)
    data_dir, users = seed_db("spread", 3000, "", 3000)
    prof = write_requests("spread-profile", profile_lines(users.rows[-1000:]))
    trees = {"before": args.before, "after": args.after}
    seen: dict[str, list[tuple[list[int], float]]] = {name: [] for name in trees}
    for _ in range(args.restarts):
        for name, src in trees.items():
            os.environ["PYTHONPATH"] = src
            server = ours(data_dir, "", cpus=ALL_CPUS, workers=2)
            try:
                for _ in range(args.trials):
                    result: dict[str, Any] = {}
                    load = threading.Thread(
                        target=_load, args=(result, prof, f"{name} trial"), daemon=True
                    )
                    load.start()
                    time.sleep(1.0)  # the connections are open and busy by now
                    spread = split()
                    load.join()
                    seen[name].append((spread, result["rps"]))
            finally:
                server.stop()
                os.environ.pop("PYTHONPATH", None)
    for name, trials in seen.items():
        on_one = sum(1 for spread, _ in trials if len(spread) == 1)
        rates = [rps for _, rps in trials]
        print(
            f"{name}: {on_one} of {len(trials)} trials with every connection on one worker; "
            f"req/s mean {statistics.mean(rates):,.0f}, lowest {min(rates):,.0f}; "
            f"splits {[spread for spread, _ in trials]}"
        )


if __name__ == "__main__":
    main()
