"""Processes of a running ``serve``, read from /proc."""

from __future__ import annotations

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
