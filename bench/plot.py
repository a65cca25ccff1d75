"""Plot throughput and p99 latency against concurrency (matplotlib, bench tools venv)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

SERIES = (
    ("floor_post", "floor (bare ASGI, POST)", "0.5", "--"),
    ("floor_get", "floor (bare ASGI, GET)", "0.7", ":"),
    ("ours_profile", "quatrix-mfa GET /profile", "tab:green", "-"),
    ("ours_valid", "quatrix-mfa verify, valid TOTP", "tab:blue", "-"),
    ("pi_valid", "privacyIDEA 3.14 /validate/check, valid", "tab:red", "-"),
)


def main() -> None:
    source = sys.stdin.read() if sys.argv[1] == "-" else Path(sys.argv[1]).read_text()
    res = json.loads(source)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for key, label, color, style in SERIES:
        runs = res.get(key) or {}
        if not runs:
            continue
        conns = sorted(int(c) for c in runs)
        rps = [runs[str(c)]["rps"] for c in conns]
        p99 = [runs[str(c)]["p99_ms"] for c in conns]
        left.plot(conns, rps, style, marker="o", color=color, label=label)
        right.plot(conns, p99, style, marker="o", color=color, label=label)
    for axis, title, unit in (
        (left, "throughput", "requests/s (log)"),
        (right, "p99 latency", "ms (log)"),
    ):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xticks([1, 16, 64], ["1", "16", "64"])
        axis.set_xlabel("concurrent connections (C)")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
    right.axhline(50, color="tab:blue", alpha=0.4, linewidth=1)
    right.annotate("target p99 50 ms", (1, 50), color="tab:blue", alpha=0.7, va="bottom")
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=3)
    fig.suptitle(
        "quatrix-mfa vs privacyIDEA vs bare ASGI floor: servers on CPU 0, wrk on CPU 1",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
