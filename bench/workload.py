"""The load: seeded users, pre-computed request files, and wrk runs with their outcomes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import config
import seed as seeding
from config import BENCH, LOAD_CPU, PI_WORKERS, VENV, log

# --- TOTP for request bodies (RFC 6238, SHA-1, 6 digits, 30 s) --------------------------


def totp(secret_b32: str, step: int) -> str:
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    digest = hmac.new(key, step.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def wrong_code(secret_b32: str, step: int) -> str:
    near = {totp(secret_b32, s) for s in (step - 1, step, step + 1)}
    code = 0
    while f"{code:06d}" in near:
        code += 1
    return f"{code:06d}"


# --- load -----------------------------------------------------------------------------


def write_requests(name: str, lines: list[str]) -> Path:
    path = config.RUN / f"{name}.req"
    path.write_text("\n".join(lines) + "\n")
    return path


def wrk(
    port: int,
    reqs: Path,
    conns: int,
    duration: float,
    *,
    cycle: bool = False,
    pi: bool = False,
    label: str = "",
    hist: bool = False,
) -> dict[str, Any]:
    """One wrk run over ``reqs``; ``hist`` keeps its latency histogram for ``pooled``."""
    out = config.RUN / f"{reqs.stem}.c{conns}.json"
    env = {
        **os.environ,
        "BENCH_FILE": str(reqs),
        "BENCH_OUT": str(out),
        "BENCH_CYCLE": "1" if cycle else "0",
        "BENCH_PI": "1" if pi else "0",
        "BENCH_CONNS": str(conns),
    }
    cmd = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{conns}", f"-d{duration}s"]
    cmd += ["--timeout", "30s", "-s", str(BENCH / "load.lua"), f"http://127.0.0.1:{port}"]
    marker = Path(f"{out}.stopped")
    marker.unlink(missing_ok=True)
    out.unlink(missing_ok=True)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    while proc.poll() is None:
        if marker.exists():  # every request answered: no need to wait out -d
            proc.send_signal(signal.SIGINT)
            proc.wait()
            break
        time.sleep(0.1)
    if proc.returncode not in (0, -signal.SIGINT):
        raise RuntimeError(f"wrk failed ({proc.returncode})")
    drain(port)
    result: dict[str, Any] = json.loads(out.read_text())
    histogram = result.pop("latency_hist")
    if hist:
        result["hist"] = histogram
    exhausted = result["outcomes"].pop("exhausted", 0)
    seconds = result["duration_us"] / 1e6
    result["counted"] = result["requests"] - exhausted
    result["rps"] = result["counted"] / seconds
    result["conns"] = conns
    result["p99_ms"] = result["p99_us"] / 1000
    result["p50_ms"] = result["p50_us"] / 1000
    log(
        f"{label or reqs.stem} C={conns}: {result['rps']:.1f} req/s, p50 {result['p50_ms']:.1f}"
        f" ms, p99 {result['p99_ms']:.1f} ms, {result['outcomes']}, errors {result['errors']}"
    )
    return result


def pooled_rounds(runs: dict[Any, dict[str, list[dict[str, Any]]]]) -> dict[Any, Any]:
    """``{setup: {what: [run, ...]}}`` with each list of rounds :func:`pooled`."""
    return {
        setup: {what: pooled(done) for what, done in by_what.items()}
        for setup, by_what in runs.items()
    }


def pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Runs repeated in rounds as one: summed counts, percentiles over all their answers.

    A p99 over one run of 1,000 answers is its 10 slowest, which one checkpoint
    or one write-back of the kernel decides; over the rounds together it is
    steadier, and each round's own p99 is kept beside it (``round_p99_ms``).
    """
    counts: dict[int, int] = {}
    outcomes: dict[str, int] = {}
    errors: dict[str, int] = {}
    for run in runs:
        for value, count in run["hist"]:
            counts[value] = counts.get(value, 0) + count
        for key, n in run["outcomes"].items():
            outcomes[key] = outcomes.get(key, 0) + n
        for key, n in run["errors"].items():
            errors[key] = errors.get(key, 0) + n
    values = sorted(counts)
    total = sum(counts.values())

    def percentile(p: float) -> int:
        # The rank as wrk's own latency:percentile takes it.
        rank = p / 100 * total + 0.5
        seen = 0
        for value in values:
            seen += counts[value]
            if seen >= rank:
                return value
        return values[-1]

    counted = sum(run["counted"] for run in runs)
    duration_us = sum(run["duration_us"] for run in runs)
    return {
        "rounds": len(runs),
        "round_p99_ms": [run["p99_ms"] for run in runs],
        "round_rps": [run["rps"] for run in runs],
        "requests": sum(run["requests"] for run in runs),
        "counted": counted,
        "duration_us": duration_us,
        "rps": counted / (duration_us / 1e6),
        "conns": runs[0]["conns"],
        "p50_ms": percentile(50) / 1000,
        "p99_ms": percentile(99) / 1000,
        "max_us": values[-1],
        "outcomes": outcomes,
        "errors": errors,
    }


def drain(port: int) -> None:
    """Wait until the server has worked off what the last run left queued.

    wrk closes its connections at the end, but a server with sync workers
    still answers every request already queued; the next run must not pay
    for them. Two probes queue behind that backlog (one per worker).
    """
    for _ in range(PI_WORKERS):  # enough for ours (1 worker) too
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=300):
                pass
        except OSError:
            pass  # any answer (404 included) means the queue ahead of it is done


class Users:
    """Exported seeded users (email, secret, pending token, full token), handed out once."""

    def __init__(self, path: Path) -> None:
        self.rows = [line.split("\t") for line in path.read_text().splitlines()]
        self.next = 0

    def take(self, count: int) -> list[list[str]]:
        rows = self.rows[self.next : self.next + count]
        self.next += len(rows)
        return rows


def verify_lines(rows: list[list[str]], valid: bool) -> list[str]:
    step = int(time.time() // 30)
    lines = []
    for _email, secret, pending, _full in rows:
        code = totp(secret, step) if valid else wrong_code(secret, step)
        body = json.dumps({"auth_type": "2FA", "code": code}, separators=(",", ":"))
        headers = f"X-Auth-Token:{pending}|Content-Type:application/json"
        lines.append(f"POST\t/api/1.0/session/login\t{headers}\t{body}")
    return lines


def profile_lines(rows: list[list[str]]) -> list[str]:
    return [f"GET\t/api/1.0/profile\tX-Auth-Token:{row[3]}\t" for row in rows]


def login_lines(rows: list[list[str]]) -> list[str]:
    lines = []
    for email, *_ in rows:
        basic = base64.b64encode(f"{email}:{seeding.PASSWORD}".encode()).decode()
        lines.append(f"GET\t/api/1.0/session/login\tAuthorization:Basic {basic}\t")
    return lines


def seed_db(name: str, users: int, database_url: str, export: int) -> tuple[Path, Users]:
    data_dir = config.RUN / name
    out = data_dir / "users.tsv"
    log(f"seeding {name}: {users:,} users on {'PostgreSQL' if database_url else 'SQLite'}")
    started = time.perf_counter()
    cmd = [str(VENV / "python"), str(BENCH / "seed.py"), "--data-dir", str(data_dir)]
    cmd += ["--users", str(users), "--export", str(export), "--out", str(out)]
    if database_url:
        cmd += ["--database-url", database_url]
    subprocess.run(cmd, check=True)
    # The seed leaves up to a gigabyte of dirty pages; the kernel writing them
    # back during the next run throttled the server's own writes (a p99 of
    # 100 ms in a 1,000,000-user run). Settle first.
    os.sync()
    log(f"seeded {name} in {time.perf_counter() - started:.0f} s")
    return data_dir, Users(out)
