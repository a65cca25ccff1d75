"""Run the quatrix-mfa benchmarks side by side and write docs/benchmarks.md.

Started by ``bench/run`` (which installs wrk, the privacyIDEA reference and
matplotlib first). Every server is pinned to CPU 0 and wrk to CPU 1 with
``taskset``; the password-login comparison uses both CPUs on both sides.
All traffic goes to 127.0.0.1 and every load run is bounded in time and in
request count.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import importlib.metadata
import json
import multiprocessing
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import seed as seeding

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
OURS, FLOOR, PI = 8901, 8902, 8903
PG = "postgresql://postgres@127.0.0.1:5432/"
CONCURRENCY = (1, 16, 64)
WORKERS = 2
SERVER_ENV = {
    # The benchmark sends thousands of wrong codes from one address on purpose.
    "QUATRIX_MFA_ADDRESS_FAILURE_THRESHOLD": "100000",
    "QUATRIX_MFA_USER_FAILURE_THRESHOLD": "1000",
    # Seeded full sessions must not idle out between seeding and their run.
    "QUATRIX_MFA_SESSION_IDLE_SECONDS": "86400",
}


@dataclass(frozen=True)
class Mode:
    name: str
    duration: int  # seconds per timed run
    main_users: int
    big_users: int
    scale_requests: int


SHORT = Mode("short", 3, 10_000, 5_000, 300)
FULL = Mode("full", 10, 60_000, 1_000_000, 1000)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


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


# --- processes ------------------------------------------------------------------------


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback only
                return
        except OSError as error:
            if getattr(error, "code", None):  # an HTTP answer: the server is up
                return
            time.sleep(0.3)
    raise RuntimeError(f"no answer from {url}")


class Server:
    def __init__(self, name: str, cmd: list[str], cpus: str, url: str, env: dict[str, str]):
        self.name = name
        log_file = (RUN / f"{name}.log").open("w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", cpus, *cmd],
            env={**os.environ, **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=RUN,
        )
        wait_http(url)

    def stop(self) -> None:
        # The server runs in its own process group, which we made: end just that group.
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def ours(data_dir: Path, database_url: str, cpus: str = SERVER_CPU) -> Server:
    env = {**SERVER_ENV, "QUATRIX_MFA_DATA_DIR": str(data_dir)}
    if database_url:
        env["QUATRIX_MFA_DATABASE_URL"] = database_url
    cmd = [str(VENV / "quatrix-mfa"), "serve", "--port", str(OURS), "--workers", str(WORKERS)]
    return Server("quatrix-mfa", cmd, cpus, f"http://127.0.0.1:{OURS}/healthz", env)


def floor() -> Server:
    cmd = [str(VENV / "uvicorn"), "--app-dir", str(BENCH), "floor:app", "--port", str(FLOOR)]
    cmd += ["--workers", str(WORKERS), "--log-level", "warning", "--no-access-log"]
    return Server("floor", cmd, SERVER_CPU, f"http://127.0.0.1:{FLOOR}/", {})


def privacyidea() -> Server:
    cfg = PI_DATA / "pi.cfg"
    factory = f"privacyidea.app:create_app('production', config_file='{cfg}', silent=True)"
    cmd = [str(PI_VENV / "bin" / "gunicorn"), "-w", str(WORKERS), "-b", f"127.0.0.1:{PI}"]
    cmd += ["--timeout", "120", factory]
    env = {"PRIVACYIDEA_CONFIGFILE": str(cfg)}
    return Server("privacyidea", cmd, SERVER_CPU, f"http://127.0.0.1:{PI}/", env)


# --- load -----------------------------------------------------------------------------


def write_requests(name: str, lines: list[str]) -> Path:
    path = RUN / f"{name}.req"
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
) -> dict[str, Any]:
    out = RUN / f"{reqs.stem}.c{conns}.json"
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


def drain(port: int) -> None:
    """Wait until the server has worked off what the last run left queued.

    wrk closes its connections at the end, but a server with sync workers
    still answers every request already queued; the next run must not pay
    for them. Two probes queue behind that backlog (one per worker).
    """
    for _ in range(WORKERS):
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


# --- parts of the run -----------------------------------------------------------------


def seed_db(name: str, users: int, database_url: str, export: int) -> tuple[Path, Users]:
    data_dir = RUN / name
    out = data_dir / "users.tsv"
    log(f"seeding {name}: {users:,} users on {'PostgreSQL' if database_url else 'SQLite'}")
    started = time.perf_counter()
    cmd = [str(VENV / "python"), str(BENCH / "seed.py"), "--data-dir", str(data_dir)]
    cmd += ["--users", str(users), "--export", str(export), "--out", str(out)]
    if database_url:
        cmd += ["--database-url", database_url]
    subprocess.run(cmd, check=True)
    log(f"seeded {name} in {time.perf_counter() - started:.0f} s")
    return data_dir, Users(out)


def fresh_pg(name: str) -> str:
    for sql in (f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"):
        subprocess.run(
            ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", sql],
            check=True,
        )
    return PG + name


def drop_pg(name: str) -> None:
    subprocess.run(
        [
            "psql",
            "-q",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            f"DROP DATABASE IF EXISTS {name}",
        ],
        check=False,
    )


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
            reqs = write_requests("ours-valid", verify_lines(users.take(2 * per_run), True))
            res["ours_valid"][c] = wrk(OURS, reqs, c, mode.duration)
        res["ours_wrong"] = {}
        for c in (16,):
            reqs = write_requests("ours-wrong", verify_lines(users.take(per_run), False))
            res["ours_wrong"][c] = wrk(OURS, reqs, c, mode.duration)
    finally:
        server.stop()


def pi_setup() -> None:
    marker = PI_DATA / "ready"
    if marker.exists():
        log("privacyIDEA data from an earlier run is reused (bench/.work/pi-data)")
        return
    log(f"setting up privacyIDEA with pi-manage: {PI_POOL} users with TOTP tokens")
    subprocess.run(
        [sys.executable, str(BENCH / "pi_setup.py"), str(PI_VENV), str(PI_DATA), str(PI_POOL)],
        check=True,
    )
    marker.write_text("ok\n")


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
    out: dict[str, Any] = {}
    for size in (1000, mode.big_users):
        name = f"scale-{engine}-{size}"
        url = fresh_pg(f"bench_qmfa_{size}") if engine == "postgresql" else ""
        # Export users spread over the whole table, not just its first rows.
        data_dir, users = seed_db(name, size, url, mode.scale_requests)
        server = ours(data_dir, url)
        try:
            prof = write_requests(f"{name}-profile", profile_lines(users.rows[:1000]))
            wrk(OURS, prof, 16, 2, cycle=True, label="warm-up")
            verify = write_requests(
                f"{name}-valid", verify_lines(users.rows[: mode.scale_requests], True)
            )
            out[size] = {
                "valid": wrk(OURS, verify, 16, 60, label=f"{name} verify"),
                "profile": wrk(OURS, prof, 16, mode.duration, cycle=True, label=f"{name} profile"),
            }
        finally:
            server.stop()
            if url:
                drop_pg(f"bench_qmfa_{size}")
    res[f"scale_{engine}"] = out


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
        measure(
            "POST /session/login (valid TOTP)",
            200,
            [
                lambda r=r: client.post(
                    "/session/login",
                    headers={"X-Auth-Token": r[2]},
                    json={"auth_type": "2FA", "code": totp(r[1], step)},
                )
                for r in rows[10:20]
            ],
        )
        measure(
            "POST /session/login (wrong code)",
            401,
            [
                lambda r=r: client.post(
                    "/session/login",
                    headers={"X-Auth-Token": r[2]},
                    json={"auth_type": "2FA", "code": wrong_code(r[1], step)},
                )
                for r in rows[20:30]
            ],
        )
        measure(
            "GET /session/login (password, 207)",
            207,
            [
                lambda r=r: client.get("/session/login", auth=(r[0], seeding.PASSWORD))
                for r in rows[30:35]
            ],
        )
    return out


def summarize_profile(raw: Path, top: int = 25) -> str:
    """Self and inclusive shares of the sampled frames (py-spy raw, --gil: CPU work only)."""
    total = 0
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f for f in stack.split(";") if f]
        idle = ("Condition.wait", "select ", "_run_once", "epoll", "Queue.get", "sleep")
        if not frames or any(mark in frames[-1] for mark in idle):
            continue  # an idle thread or the event loop waiting: not work
        samples = int(count)
        total += samples
        own[frames[-1]] = own.get(frames[-1], 0) + samples
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + samples
    lines = [f"busy samples: {total}", "", "self:"]
    for frame, samples in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * samples / total:5.1f}%  {frame}")
    lines += ["", "inclusive (quatrix_mfa, sqlalchemy, fastapi, starlette, pydantic):"]
    keep = ("quatrix_mfa", "sqlalchemy/engine", "fastapi/", "starlette/", "pydantic", "anyio")
    chosen = [kv for kv in inclusive.items() if any(k in kv[0] for k in keep)]
    for frame, samples in sorted(chosen, key=lambda kv: -kv[1])[: 2 * top]:
        lines.append(f"  {100 * samples / total:5.1f}%  {frame}")
    return "\n".join(lines) + "\n"


def profile_core(data_dir: Path, users: Users, count: int = 200) -> str:
    """cProfile of core.auth.second_factor (valid codes), in-process, no HTTP."""
    import cProfile
    import io
    import pstats

    from quatrix_mfa.api.app import build_core
    from quatrix_mfa.core import auth
    from quatrix_mfa.core.sessions import authenticate
    from quatrix_mfa.settings import Settings

    core = build_core(Settings(data_dir=data_dir, address_failure_threshold=100000))
    rows = users.take(count + 20)
    step = int(time.time() // 30)

    def verify(row: list[str]) -> None:
        caller = authenticate(core, row[2])
        auth.second_factor(core, caller, "2FA", totp(row[1], step), "127.0.0.1")

    for row in rows[:20]:  # warm caches
        verify(row)
    profiler = cProfile.Profile()
    cpu = time.process_time()
    profiler.enable()
    for row in rows[20:]:
        verify(row)
    profiler.disable()
    cpu = (time.process_time() - cpu) / count
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)
    return f"{count} valid verifies, {cpu * 1000:.2f} ms CPU each under cProfile\n{out.getvalue()}"


def profile_run(mode: Mode) -> None:
    """py-spy on both server workers under the verify and /profile loads (C=16)."""
    spy = WORK / "tools" / "bin" / "py-spy"
    data_dir, users = seed_db("main", mode.main_users, "", mode.main_users)
    (RUN / "cprofile-verify.txt").write_text(profile_core(data_dir, users))
    log(f"in-process cProfile of the verify path: {RUN / 'cprofile-verify.txt'}")
    server = ours(data_dir, "")
    try:
        prof = write_requests("ours-profile", profile_lines(users.rows[-1000:]))
        wrk(OURS, prof, 16, 2, cycle=True, label="warm-up")
        for name in ("valid", "profile"):
            raw = RUN / f"pyspy-{name}.txt"
            reqs = (
                write_requests("ours-valid", verify_lines(users.take(mode.main_users // 2), True))
                if name == "valid"
                else prof
            )
            cmd = [str(spy), "record", "--subprocesses", "-p", str(server.proc.pid)]
            cmd += ["--gil", "-d", "12", "-r", "250", "-f", "raw", "-o", str(raw)]
            recorder = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
            wrk(OURS, reqs, 16, 10, cycle=name == "profile", label=f"profiled {name}")
            recorder.wait()
            summary = RUN / f"profile-{name}.txt"
            summary.write_text(summarize_profile(raw))
            log(f"profile of {name}: {summary}")
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
    global RUN
    if args.profile:  # its own folder: the last benchmark's results stay
        RUN = WORK / "profile"
    shutil.rmtree(RUN, ignore_errors=True)  # every run seeds afresh
    RUN.mkdir(parents=True)
    if args.profile:
        profile_run(SHORT)
        return
    started = time.time()
    res: dict[str, Any] = {"mode": mode.name, "started": started, "machine": machine()}
    res["mode_detail"] = mode.__dict__
    data_dir, users = seed_db("main", mode.main_users, "", mode.main_users)
    run_floor(mode, res)
    run_ours(mode, data_dir, users, res)
    if not args.skip_pi:
        run_pi(mode, res)
    run_login(mode, data_dir, users, res)
    res["statements_sqlite"] = count_statements(data_dir, "", users)
    # The short mode keeps to SQLite here, to stay under 3 minutes.
    for engine in ("sqlite",) if args.short else ("sqlite", "postgresql"):
        run_scale(mode, res, engine)
    if not args.short:
        pg_url = fresh_pg("bench_qmfa_statements")
        pg_dir, pg_users = seed_db("statements-pg", 100, pg_url, 100)
        res["statements_postgresql"] = count_statements(pg_dir, pg_url, pg_users)
        drop_pg("bench_qmfa_statements")
    res["elapsed"] = time.time() - started
    (RUN / "results.json").write_text(json.dumps(res, indent=1))
    import report

    report.write(res, ROOT / "docs" / "benchmarks.md")
    log(f"done in {res['elapsed']:.0f} s: docs/benchmarks.md")


if __name__ == "__main__":
    main()
