"""Run the quatrix-mfa benchmarks side by side and write docs/benchmarks.md.

Started by ``bench/run`` (which installs wrk, the privacyIDEA reference and
matplotlib first). Every server is pinned to CPU 0 and wrk to CPU 1 with
``taskset``; the password-login comparison uses both CPUs on both sides.
All traffic goes to 127.0.0.1 and every load run is bounded in time and in
request count.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import config
from config import (
    ALL_CPUS,
    BENCH,
    CONCURRENCY,
    FLOOR,
    FULL,
    OURS,
    PI,
    PI_DATA,
    PI_POOL,
    PI_SLICE,
    PI_USABLE,
    PI_VENV,
    REF,
    ROOT,
    SHORT,
    Mode,
    log,
)
from cores import run_cores
from profiling import profile_run
from statements import count_statements
from workload import (
    Users,
    login_lines,
    pooled,
    pooled_rounds,
    profile_lines,
    seed_db,
    totp,
    verify_lines,
    write_requests,
    wrk,
    wrong_code,
)

from servers import drop_pg, floor, fresh_pg, ours, pi_setup, privacyidea, reference

# --- parts of the run -----------------------------------------------------------------


def run_floor(mode: Mode, res: dict[str, Any]) -> None:
    server = floor()
    try:
        get = write_requests("floor-get", ["GET\t/profile\t\t"])
        post = write_requests(
            "floor-post",
            ['POST\t/session/login\tContent-Type:application/json\t{"auth_type":"2FA","code":"1"}'],
        )
        wrk(FLOOR, get, 16, 1, cycle=True, label="warm-up")
        res["floor_get"] = {c: wrk(FLOOR, get, c, mode.duration, cycle=True) for c in CONCURRENCY}
        res["floor_post"] = {c: wrk(FLOOR, post, c, mode.duration, cycle=True) for c in CONCURRENCY}
    finally:
        server.stop()


def reference_db(users: Users) -> Path:
    """The reference's database: a user and a session for each seeded user,
    under the SHA-256 of the same full-session token as ours."""
    import hashlib
    import sqlite3
    import uuid

    from reference import SCHEMA

    path = config.RUN / "reference.db"
    with sqlite3.connect(path) as db:
        for statement in SCHEMA:
            db.execute(statement)
        expires = time.time() + 86400
        for email, _secret, _pending, full in users.rows:
            user_id = str(uuid.uuid4())
            db.execute("INSERT INTO users VALUES (?, ?, ?)", (user_id, "Bench user", email))
            token_hash = hashlib.sha256(full.encode()).hexdigest()
            db.execute("INSERT INTO sessions VALUES (?, ?, ?)", (token_hash, user_id, expires))
    return path


def run_reference(mode: Mode, users: Users, res: dict[str, Any]) -> None:
    server = reference(reference_db(users))
    try:
        prof = write_requests("reference-profile", profile_lines(users.rows[-1000:]))
        wrk(REF, prof, 16, 2, cycle=True, label="warm-up")
        res["reference_profile"] = {
            c: wrk(REF, prof, c, mode.duration, cycle=True) for c in CONCURRENCY
        }
    finally:
        server.stop()


def run_ours(mode: Mode, data_dir: Path, users: Users, res: dict[str, Any]) -> None:
    server = ours(data_dir, "")
    try:
        per_run = mode.main_users // 8
        profile_rows = users.rows[-1000:]  # reading does not use them up
        prof = write_requests("ours-profile", profile_lines(profile_rows))
        wrk(OURS, prof, 16, 2, cycle=True, label="warm-up (touches every session once)")
        res["ours_profile"] = {
            c: wrk(OURS, prof, c, mode.duration, cycle=True) for c in CONCURRENCY
        }
        res["ours_valid"] = {}
        for c in CONCURRENCY:
            reqs = write_requests("ours-valid", verify_lines(users.take(per_run), True))
            res["ours_valid"][c] = wrk(OURS, reqs, c, mode.duration, hist=c == 16)
        reqs = write_requests("ours-wrong", verify_lines(users.take(per_run), False))
        res["ours_wrong"] = {16: wrk(OURS, reqs, 16, mode.duration, hist=True)}
    finally:
        server.stop()


def run_ours_again(mode: Mode, data_dir: Path, users: Users, res: dict[str, Any]) -> None:
    """The C=16 verify runs once more, after privacyIDEA's: ours before and after it.

    This box's speed drifts by tens of percent within minutes. Pooled, the runs
    on both sides of privacyIDEA's measure the same stretch of time as it, so
    the ratio between the two is not one machine mood against another.
    """
    server = ours(data_dir, "")
    try:
        per_run = mode.main_users // 8
        prof = write_requests("ours-profile", profile_lines(users.rows[-1000:]))
        wrk(OURS, prof, 16, 2, cycle=True, label="warm-up")
        for key, valid in (("ours_valid", True), ("ours_wrong", False)):
            reqs = write_requests(f"{key}-after", verify_lines(users.take(per_run), valid))
            after = wrk(OURS, reqs, 16, mode.duration, hist=True, label=f"{key} after privacyIDEA")
            res[key][16] = pooled([res[key][16], after])
    finally:
        server.stop()


def pi_slice(rows: list[list[str]], offset: int) -> list[list[str]]:
    return [rows[(offset + i) % PI_USABLE] for i in range(PI_SLICE)]


def run_pi(mode: Mode, res: dict[str, Any]) -> None:
    pi_setup()
    rows = [line.split("\t") for line in (PI_DATA / "users.tsv").read_text().splitlines()]
    counter_file = PI_DATA / "runs"
    runs = int(counter_file.read_text()) if counter_file.exists() else 0
    counter_file.write_text(f"{runs + 1}\n")
    # Each bench run uses every pool user once, roles rotated by a quarter each run:
    # no code is replayed, and a user's wrong code is followed by a success later.
    offset = (runs * PI_SLICE) % PI_USABLE
    duration = 20 if mode.name == "full" else 5  # it is slow: longer runs, fewer answers
    server = privacyidea()

    def lines(part: list[list[str]], valid: bool) -> list[str]:
        step = int(time.time() // 30)
        out = []
        for user, secret in part:
            code = totp(secret, step) if valid else wrong_code(secret, step)
            out.append(
                "POST\t/validate/check\tContent-Type:application/x-www-form-urlencoded\t"
                f"user={user}&pass={code}"
            )
        return out

    try:
        warm = write_requests(
            "pi-warm",
            [
                "POST\t/validate/check\tContent-Type:application/x-www-form-urlencoded\t"
                "user=nobody&pass=000000"
            ],
        )
        wrk(PI, warm, 2, 2, cycle=True, label="privacyIDEA warm-up (unknown user)")
        res["pi_valid"] = {}
        for i, c in enumerate(CONCURRENCY):
            reqs = write_requests("pi-valid", lines(pi_slice(rows, offset + i * PI_SLICE), True))
            res["pi_valid"][c] = wrk(PI, reqs, c, duration, pi=True)
        reqs = write_requests("pi-wrong", lines(pi_slice(rows, offset + 3 * PI_SLICE), False))
        res["pi_wrong"] = {16: wrk(PI, reqs, 16, duration, pi=True)}
    finally:
        server.stop()
    done = subprocess.run(
        [
            str(PI_VENV / "bin" / "python"),
            str(BENCH / "pi_statements.py"),
            str(PI_DATA / "pi.cfg"),
            str(PI_DATA / "users.tsv"),
            str(PI_USABLE),
            str(PI_POOL - PI_USABLE),
        ],
        env={**os.environ, "PRIVACYIDEA_CONFIGFILE": str(PI_DATA / "pi.cfg")},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 0:
        res["statements_privacyidea"] = json.loads(done.stdout.strip().splitlines()[-1])
        log(f"privacyIDEA statements per check: {res['statements_privacyidea']}")
    else:
        log(f"privacyIDEA statement count failed: {done.stderr.strip()[-300:]}")


def _argon2_worker(args: tuple[float, str]) -> int:
    import argon2

    seconds, stored = args
    hasher = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
    count = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        hasher.verify(stored, "bench passphrase 2026")
        count += 1
    return count


def argon2_pool_rate(seconds: float) -> float:
    import argon2

    hasher = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
    stored = hasher.hash("bench passphrase 2026")
    procs = os.cpu_count() or 1
    started = time.perf_counter()
    with multiprocessing.Pool(procs) as pool:
        counts = pool.map(_argon2_worker, [(seconds, stored)] * procs)
    return sum(counts) / (time.perf_counter() - started)


def run_login(mode: Mode, data_dir: Path, users: Users, res: dict[str, Any]) -> None:
    rate = argon2_pool_rate(mode.duration)
    log(f"bare argon2id verify, process pool on all {os.cpu_count()} CPUs: {rate:.1f}/s")
    res["argon2_pool"] = rate
    server = ours(data_dir, "", cpus=ALL_CPUS)
    try:
        reqs = write_requests("ours-login", login_lines(users.rows[-2000:]))
        wrk(OURS, reqs, 8, 1, cycle=True, label="warm-up")
        res["ours_login"] = {8: wrk(OURS, reqs, 8, mode.duration, cycle=True)}
    finally:
        server.stop()


def run_scale(mode: Mode, res: dict[str, Any], engine: str) -> None:
    """p99 of verify and GET /profile on 1,000 users against ``mode.big_users``.

    The two sizes take turns (``mode.scale_rounds``), so a slow minute of the
    machine falls on both, and each size's percentiles are taken over all its
    rounds. Valid checks use up pending sessions: the small database is seeded
    afresh for every round, the big one once with enough users for all rounds.
    """
    big = mode.big_users
    big_db = f"bench_qmfa_{big}"
    big_url = fresh_pg(big_db) if engine == "postgresql" else ""
    per_round = mode.scale_requests
    big_dir, big_users = seed_db(
        f"scale-{engine}-{big}", big, big_url, per_round * mode.scale_rounds
    )
    runs: dict[int, dict[str, list[dict[str, Any]]]] = {
        size: {"valid": [], "profile": []} for size in (1000, big)
    }
    try:
        for round_ in range(mode.scale_rounds):
            small_db = "bench_qmfa_1000"
            small_url = fresh_pg(small_db) if engine == "postgresql" else ""
            small_dir, small_users = seed_db(
                f"scale-{engine}-1000-r{round_}", 1000, small_url, per_round
            )
            try:
                _scale_round(engine, 1000, small_dir, small_url, small_users.rows, runs[1000], mode)
            finally:
                if small_url:
                    drop_pg(small_db)
            rows = big_users.rows[round_ * per_round : (round_ + 1) * per_round]
            _scale_round(engine, big, big_dir, big_url, rows, runs[big], mode)
    finally:
        if big_url:
            drop_pg(big_db)
    res[f"scale_{engine}"] = pooled_rounds(runs)


def _scale_round(
    engine: str,
    size: int,
    data_dir: Path,
    url: str,
    rows: list[list[str]],
    runs: dict[str, list[dict[str, Any]]],
    mode: Mode,
) -> None:
    name = f"scale-{engine}-{size}"
    server = ours(data_dir, url)
    try:
        prof = write_requests(f"{name}-profile", profile_lines(rows))
        wrk(OURS, prof, 16, 2, cycle=True, label="warm-up")
        verify = write_requests(f"{name}-valid", verify_lines(rows, True))
        runs["valid"].append(wrk(OURS, verify, 16, 60, label=f"{name} verify", hist=True))
        runs["profile"].append(
            wrk(OURS, prof, 16, mode.scale_seconds, cycle=True, label=f"{name} profile", hist=True)
        )
    finally:
        server.stop()


def machine() -> dict[str, str]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    def pi_version(dist: str) -> str:
        cmd = [str(PI_VENV / "bin" / "python"), "-c"]
        cmd += [f"import importlib.metadata as m; print(m.version('{dist}'))"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        return done.stdout.strip() or "?"

    pg = subprocess.run(
        ["psql", "-Atq", "-h", "127.0.0.1", "-U", "postgres", "-c", "SHOW server_version"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    import sqlite3

    return {
        "cpu": f"{cpu}, {os.cpu_count()} CPUs",
        "memory": f"{int(mem) // 1024 // 1024} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "quatrix-mfa": version("quatrix-mfa"),
        "fastapi": version("fastapi"),
        "uvicorn": version("uvicorn"),
        "uvloop": version("uvloop"),
        "httptools": version("httptools"),
        "sqlalchemy": version("sqlalchemy"),
        "psycopg": version("psycopg"),
        "argon2-cffi": version("argon2-cffi"),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg,
        "privacyidea": pi_version("privacyidea"),
        "gunicorn": pi_version("gunicorn"),
        "wrk": (wrk_version.stdout + wrk_version.stderr).split(" [")[0].replace("wrk ", ""),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="a quick run (< 3 minutes)")
    parser.add_argument("--skip-pi", action="store_true", help="leave out privacyIDEA")
    parser.add_argument(
        "--profile", action="store_true", help="only profile (cProfile in-process, py-spy)"
    )
    args = parser.parse_args()
    mode = SHORT if args.short else FULL
    if args.profile:  # its own folder: the last benchmark's results stay
        config.RUN = config.WORK / "profile"
    shutil.rmtree(config.RUN, ignore_errors=True)  # every run seeds afresh
    config.RUN.mkdir(parents=True)
    if args.profile:
        profile_run(SHORT)
        return
    started = time.time()
    res: dict[str, Any] = {"mode": mode.name, "started": started, "machine": machine()}
    res["mode_detail"] = mode.__dict__
    data_dir, users = seed_db("main", mode.main_users, "", mode.main_users)
    run_floor(mode, res)
    run_reference(mode, users, res)
    run_ours(mode, data_dir, users, res)
    if not args.skip_pi:
        run_pi(mode, res)
        run_ours_again(mode, data_dir, users, res)
    for runs in (res["ours_valid"], res["ours_wrong"]):
        runs[16].pop("hist", None)  # pooled already, or not needed: kept out of results.json
    run_login(mode, data_dir, users, res)
    res["statements_sqlite"] = count_statements(data_dir, "", users)
    # The short mode keeps to SQLite here, to stay under 3 minutes.
    for engine in ("sqlite",) if args.short else ("sqlite", "postgresql"):
        run_scale(mode, res, engine)
        run_cores(mode, res, engine)
    if not args.short:
        pg_url = fresh_pg("bench_qmfa_statements")
        pg_dir, pg_users = seed_db("statements-pg", 100, pg_url, 100)
        res["statements_postgresql"] = count_statements(pg_dir, pg_url, pg_users)
        drop_pg("bench_qmfa_statements")
    res["elapsed"] = time.time() - started
    (config.RUN / "results.json").write_text(json.dumps(res, indent=1))
    import report

    report.write(res, ROOT / "docs" / "benchmarks.md")
    log(f"done in {res['elapsed']:.0f} s: docs/benchmarks.md")


if __name__ == "__main__":
    main()
