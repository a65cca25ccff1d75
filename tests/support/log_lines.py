"""Every log line a test run produces, for the whole-run secrets grep
(tests/support/secrets_grep.py).

* In the test process: every record through Python logging, written as
  ``serve`` writes it (the JSON line of quatrix_mfa/logs.py, which holds the
  message and every field), by a handler on the root logger for the whole
  run. Left out: the test's own HTTP client (httpx, httpcore: its request
  lines show the paths it called, a reset id among them; ``serve`` keeps no
  access log) and SQLAlchemy below WARNING (its statements with their
  parameters, which ``serve`` never writes: logs.configure holds it at
  WARNING; two tests turn them on to search them themselves).
* In every ``quatrix-mfa`` process a test starts (``serve``, its workers,
  each command): what it writes to stderr, and the log lines among what it
  writes to stdout (JSON lines, or text lines in logs.TextFormatter's
  shape). The rest of stdout is a command's answer, which may hold a secret
  by design (``user reset-link`` prints a link). The copy is made inside the
  process (log_tee/sitecustomize.py), set up by a wrapper of
  ``subprocess.Popen`` that adds two variables and the folder to the
  process's environment, whatever environment the test gives it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from quatrix_mfa.logs import JsonFormatter

TEE = Path(__file__).resolve().parent / "log_tee"
FOLDER = "QMFA_TEST_LOG_TEE"  # as in log_tee/sitecustomize.py
ORIGIN = "QMFA_TEST_LOG_ORIGIN"
IN_PROCESS = "in-process.log"
CLIENT_LOGGERS = ("httpx", "httpcore")
TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z]+ \S+: ")
OURS = ("quatrix_mfa", "quatrix-mfa")


class RunLog(logging.Handler):
    """Appends each record of the test process, as a JSON line, to the run's file,
    after the name of the test that was running (``origin``)."""

    def __init__(self, folder: Path, origin: Callable[[], str]) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self._origin = origin
        self._file = (folder / IN_PROCESS).open("a", encoding="utf-8")
        self.records = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(CLIENT_LOGGERS):
            return
        if record.name.startswith("sqlalchemy") and record.levelno < logging.WARNING:
            return
        try:
            line = self.format(record)
            self._file.write(f"{self._origin()}\t{line}\n")
            self.records += 1
        except Exception:  # logging's own contract: report, never raise
            self.handleError(record)

    def close(self) -> None:
        self._file.close()
        super().close()


def install_handler(handler: RunLog) -> None:
    """On the root logger, with our own loggers at DEBUG (the most ``serve``
    can be told to write); again after a test that replaced the root's
    handlers. The root's level stays: the other libraries of the test process
    keep to WARNING (the ``serve`` processes' lines are copied at their INFO)."""
    root = logging.getLogger()
    if handler not in root.handlers:
        root.addHandler(handler)
    logging.getLogger("quatrix_mfa").setLevel(logging.DEBUG)


def remove_handler(handler: RunLog) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()


def tee_environment(env: Mapping[str, str] | None, folder: Path, origin: str) -> dict[str, str]:
    """``env`` (or this process's) with the copy switched on for ``origin``'s process."""
    made = dict(os.environ if env is None else env)
    made[FOLDER] = str(folder)
    made[ORIGIN] = origin
    made["PYTHONPATH"] = os.pathsep.join(p for p in (str(TEE), made.get("PYTHONPATH")) if p)
    return made


def is_ours(args: Any) -> bool:
    """A command line that runs quatrix-mfa code (``-m quatrix_mfa.cli``, a script importing it)."""
    words = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
    return any(any(o in os.fsdecode(w) for o in OURS) for w in words)


def patch_popen(
    folder: Path, origin: Callable[[], str], seen_env: Callable[[Mapping[str, str]], None]
) -> Callable[[], None]:
    """Make every ``subprocess.Popen`` (and so ``subprocess.run``) of quatrix-mfa
    code copy its output; ``seen_env`` is shown each such environment.
    Returns the function that puts the original back."""
    original = subprocess.Popen

    class TeeingPopen(original):  # type: ignore[valid-type,misc]
        def __init__(self, args: Any, *rest: Any, **kw: Any) -> None:
            if is_ours(args):
                kw["env"] = tee_environment(kw.get("env"), folder, origin())
                seen_env(kw["env"])
            super().__init__(args, *rest, **kw)

    subprocess.Popen = TeeingPopen  # type: ignore[misc]

    def restore() -> None:
        subprocess.Popen = original  # type: ignore[misc]

    return restore


def lines(folder: Path) -> Iterator[tuple[str, str]]:
    """(where it was logged, the line) for every log line of the run."""
    in_process = folder / IN_PROCESS
    if in_process.exists():
        with in_process.open(encoding="utf-8") as file:
            for entry in file:
                origin, _, line = entry.rstrip("\n").partition("\t")
                yield origin or "(between tests)", line
    for meta in sorted(folder.glob("*.meta")):
        where = _process_name(meta)
        for stream, keep in ((".err", _any_line), (".out", _is_log_line)):
            path = meta.with_suffix(stream)
            if path.exists():
                for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                    if keep(line):
                        yield f"{where} {stream[1:]}", line


def _process_name(meta: Path) -> str:
    """``test id: quatrix-mfa serve --port 1234 (pid 99)``."""
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
    except ValueError:  # the process died while writing it
        info = {}
    argv: Sequence[str] = info.get("argv") or []
    cli = "quatrix_mfa.cli"
    words = argv[argv.index(cli) + 1 :] if cli in argv else argv[1:]
    command = " ".join(" ".join(words).split())  # one line, even for a ``-c`` script
    origin = info.get("origin") or "(between tests)"
    return f"{origin}: quatrix-mfa {command[:120]} (pid {meta.stem})"


def _any_line(line: str) -> bool:
    return bool(line.strip())


def _is_log_line(line: str) -> bool:
    """A JSON log line (an object with a logger) or a text one (logs.TextFormatter)."""
    if line.startswith("{"):
        try:
            parsed = json.loads(line)
        except ValueError:
            return False
        return isinstance(parsed, dict) and "logger" in parsed
    return bool(TEXT_LINE.match(line))
