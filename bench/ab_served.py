"""Served A/B of two source trees: GET /api/1.0/profile and a valid second
factor at C=16 against ``quatrix-mfa serve`` (one worker on the server's CPU,
wrk on the other; ``--workers 2``: the server on both CPUs, wrk sharing one),
the two trees taking turns on one seeded database.

    .venv/bin/python bench/ab_served.py BEFORE_SRC [AFTER_SRC] [--engine postgresql] [--workers 2]

``BEFORE_SRC``: the ``src`` folder of another checkout (``git worktree add
--detach /tmp/before <commit>``), put first on the server's ``PYTHONPATH``;
``AFTER_SRC`` defaults to this one's. Where ``bench/ab_inprocess.py`` counts
CPU, this counts what a client sees, round trips to PostgreSQL included.
"""

from __future__ import annotations

import argparse
import os
import shutil
from typing import Any

import config
from config import ALL_CPUS, OURS
from workload import pooled, profile_lines, seed_db, verify_lines, write_requests, wrk

from servers import drop_pg, fresh_pg, ours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    config.two_trees(parser)
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument(
        "--workers", type=int, default=1, help="more than 1: the server on both CPUs"
    )
    args = parser.parse_args()
    config.RUN = config.WORK / "ab-served"
    shutil.rmtree(config.RUN, ignore_errors=True)
    config.RUN.mkdir(parents=True)
    db = "bench_qmfa_ab"
    url = fresh_pg(db) if args.engine == "postgresql" else ""
    trees = {"before": args.before, "after": args.after}
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {"profile": [], "valid": []} for name in trees
    }
    per_round = args.users // (2 * args.rounds + 1)
    try:
        data_dir, users = seed_db("ab", args.users, url, args.users)
        prof = write_requests("ab-profile", profile_lines(users.rows[-1000:]))
        for _ in range(args.rounds):
            for name, src in trees.items():
                os.environ["PYTHONPATH"] = src
                if args.workers > 1:
                    server = ours(data_dir, url, cpus=ALL_CPUS, workers=args.workers)
                else:
                    server = ours(data_dir, url)
                try:
                    wrk(OURS, prof, 16, 2, cycle=True, label=f"warm-up, {name}")
                    runs[name]["profile"].append(
                        wrk(OURS, prof, 16, args.seconds, cycle=True, hist=True, label=name)
                    )
                    valid = write_requests("ab-valid", verify_lines(users.take(per_round), True))
                    runs[name]["valid"].append(
                        wrk(OURS, valid, 16, args.seconds, hist=True, label=f"{name} verify")
                    )
                finally:
                    server.stop()
                    os.environ.pop("PYTHONPATH", None)
    finally:
        if url:
            drop_pg(db)
    for what in ("profile", "valid"):
        done = {name: pooled(runs[name][what]) for name in trees}
        before, after = done["before"], done["after"]
        print(
            f"{args.engine} {what}: "
            f"before {before['rps']:,.0f} req/s p99 {before['p99_ms']:.1f} ms, "
            f"after {after['rps']:,.0f} req/s p99 {after['p99_ms']:.1f} ms: "
            f"{after['rps'] / before['rps']:.2f}x"
        )


if __name__ == "__main__":
    main()
