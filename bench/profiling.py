"""Profiles of the verify path: cProfile in-process and py-spy on the served workers."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import config
from config import OURS, WORK, Mode, log
from workload import Users, profile_lines, seed_db, totp, verify_lines, write_requests, wrk

from servers import ours


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
    from quatrix_mfa.core.context import Context
    from quatrix_mfa.core.sessions import authenticate
    from quatrix_mfa.settings import Settings

    core = build_core(Settings(data_dir=data_dir, address_failure_threshold=100000))
    rows = users.take(count + 20)
    step = int(time.time() // 30)

    def verify(row: list[str]) -> None:
        ctx = Context(authenticate(core, row[2], "127.0.0.1"), "127.0.0.1", core.clock.now())
        auth.second_factor(core, ctx, "2FA", totp(row[1], step))

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
    """py-spy on the server's worker(s) under the verify and /profile loads (C=16)."""
    spy = WORK / "tools" / "bin" / "py-spy"
    data_dir, users = seed_db("main", mode.main_users, "", mode.main_users)
    (config.RUN / "cprofile-verify.txt").write_text(profile_core(data_dir, users))
    log(f"in-process cProfile of the verify path: {config.RUN / 'cprofile-verify.txt'}")
    server = ours(data_dir, "")
    try:
        prof = write_requests("ours-profile", profile_lines(users.rows[-1000:]))
        wrk(OURS, prof, 16, 2, cycle=True, label="warm-up")
        for name in ("valid", "profile"):
            raw = config.RUN / f"pyspy-{name}.txt"
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
            summary = config.RUN / f"profile-{name}.txt"
            summary.write_text(summarize_profile(raw))
            log(f"profile of {name}: {summary}")
    finally:
        server.stop()
