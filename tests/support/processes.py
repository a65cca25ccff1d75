"""Processes of a running ``serve``, read from /proc, and its output as it comes."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path


def worker_pids(parent: int) -> set[int]:
    """Children of ``parent`` that are uvicorn workers (multiprocessing spawn)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"spawn_main" in cmdline:
            found.add(int(entry.name))
    return found


def read_until(process: subprocess.Popen[bytes], prefix: bytes, timeout: float = 60.0) -> bytes:
    """Read ``process``'s stdout (a pipe) line by line until one starts with
    ``prefix``, and return that line the moment it is read."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    pending = b""
    fd = process.stdout.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            if process.poll() is not None:
                break
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.startswith(prefix):
                return line
    raise AssertionError(f"no line starting {prefix!r} within {timeout} s")


def wait_replaced(parent: int, gone: int, workers: int = 2, timeout: float = 30.0) -> set[int]:
    """Wait until ``gone`` is no worker of ``parent`` and ``workers`` are again;
    the workers then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = worker_pids(parent)
        if gone not in now and len(now) == workers:
            return now
        time.sleep(0.1)
    raise AssertionError(f"worker {gone} not replaced in {timeout} s: {sorted(now)}")


def stop(server: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM ``server`` (started with ``start_new_session``) and wait for it;
    if it has not ended in ``timeout`` seconds, SIGKILL its whole group."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=timeout)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


def tcp_sockets(pid: int, port: int, state: str) -> set[int]:
    """Inodes of ``pid``'s TCP sockets on local ``port`` in ``state``, as
    /proc/net/tcp spells it ("0A": listening, "01": established)."""
    wanted = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == state:
                wanted.add(int(fields[9]))
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inode = int(target[len("socket:[") : -1])
            if inode in wanted:
                held.add(inode)
    return held
