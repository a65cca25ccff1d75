"""Copies what a ``quatrix-mfa`` process started by a test writes to its
stdout and stderr into the test run's log folder, for the whole-run secrets
grep (tests/support/log_lines.py puts this folder first on the process's
``PYTHONPATH``; Python imports ``sitecustomize`` at start-up).

Every write still goes where it went (a pipe the test reads, a file, or
``/dev/null``); a copy goes to ``<folder>/<pid>.out`` and ``<pid>.err``,
unbuffered, so a process killed with SIGKILL has lost nothing of what it
wrote. ``<pid>.meta`` names the test that started the process and its
command line. The workers of ``serve --workers N`` (multiprocessing's spawn
start a new interpreter with the same environment) copy theirs too.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import sys
from typing import Any

# Not QUATRIX_MFA_*: the service would warn of an unknown variable.
FOLDER = "QMFA_TEST_LOG_TEE"
ORIGIN = "QMFA_TEST_LOG_ORIGIN"


class Tee:
    """A text stream that also appends every write to a file."""

    def __init__(self, stream: Any, path: str) -> None:
        self._stream = stream
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def write(self, text: str) -> int:
        written = self._stream.write(text)
        os.write(self._fd, text.encode("utf-8", "backslashreplace"))
        return int(written)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _install(folder: str) -> None:
    pid = os.getpid()
    meta = {"origin": os.environ.get(ORIGIN, ""), "argv": sys.orig_argv}
    with open(os.path.join(folder, f"{pid}.meta"), "w", encoding="utf-8") as file:
        json.dump(meta, file)
    if sys.stdout is not None:
        sys.stdout = Tee(sys.stdout, os.path.join(folder, f"{pid}.out"))
    if sys.stderr is not None:
        sys.stderr = Tee(sys.stderr, os.path.join(folder, f"{pid}.err"))


def _chain() -> None:
    """Run the ``sitecustomize`` this one hides, if the interpreter has one."""
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


if os.path.isdir(os.environ.get(FOLDER, "")):
    _install(os.environ[FOLDER])
_chain()
