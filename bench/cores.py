"""Two workers on two CPUs against one worker on one (issue 14): GET /profile
and valid verifies at C=16, on SQLite and on PostgreSQL.

This box has two CPUs and wrk needs one: it keeps CPU 1 throughout, so with
two workers it shares that CPU with one of them (at C=16 it used ~15% of a CPU
for ~4,000 GETs a second). The ratio measured here is therefore a lower bound
of what two free CPUs give. The two set-ups take turns, so a slow minute of
the machine falls on both.
"""

from __future__ import annotations

from typing import Any

from config import ALL_CPUS, OURS, SERVER_CPU, Mode
from workload import pooled_rounds, profile_lines, seed_db, verify_lines, write_requests, wrk

from servers import drop_pg, fresh_pg, ours

SETUPS = ((1, SERVER_CPU), (2, ALL_CPUS))
ROUNDS = 2


def run_cores(mode: Mode, res: dict[str, Any], engine: str) -> None:
    """``res["cores_<engine>"][workers]``: pooled GET /profile and verify runs."""
    per_run = mode.main_users // 16
    db = "bench_qmfa_cores"
    url = fresh_pg(db) if engine == "postgresql" else ""
    users_needed = per_run * len(SETUPS) * ROUNDS + 1000
    data_dir, users = seed_db(f"cores-{engine}", users_needed, url, users_needed)
    runs: dict[int, dict[str, list[dict[str, Any]]]] = {
        workers: {"profile": [], "valid": []} for workers, _ in SETUPS
    }
    try:
        prof = write_requests(f"cores-{engine}-profile", profile_lines(users.rows[-1000:]))
        for _ in range(ROUNDS):
            for workers, cpus in SETUPS:
                name = f"cores {engine}, {workers} worker(s) on CPU {cpus}"
                server = ours(data_dir, url, cpus=cpus, workers=workers)
                try:
                    wrk(OURS, prof, 16, 2, cycle=True, label=f"warm-up, {name}")
                    done = runs[workers]
                    done["profile"].append(
                        wrk(
                            OURS,
                            prof,
                            16,
                            mode.duration,
                            cycle=True,
                            hist=True,
                            label=f"{name}: profile",
                        )
                    )
                    reqs = write_requests(
                        f"cores-{engine}-valid", verify_lines(users.take(per_run), True)
                    )
                    done["valid"].append(
                        wrk(OURS, reqs, 16, mode.duration, hist=True, label=f"{name}: verify")
                    )
                finally:
                    server.stop()
    finally:
        if url:
            drop_pg(db)
    res[f"cores_{engine}"] = pooled_rounds(runs)
