"""Issue 15, item 2: the whole-run secrets grep (tests/support/secrets_grep.py)
finds a secret of the run in a log line and fails the run, and only then.

The grep's own search is tried on lines made here; the whole mechanism (the
secrets taken from HTTP, the lines from logging and from a process's
stderr, the exit status and the report) in a small inner pytest run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.secret_book import SecretBook, masked

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "6f1c0a52-1b7e-4c1e-9a57-3f0d2b8e6a11"
CODE = "483920"


def book(**secrets: str) -> SecretBook:
    made = SecretBook()
    for kind, value in secrets.items():
        made.add(kind.replace("_", " "), value, "a test")
    return made


def found(secrets: SecretBook, line: str) -> list[str]:
    return [hit.secret.kind for hit in secrets.search(line)]


def test_a_secret_is_found_wherever_a_log_line_puts_it() -> None:
    secrets = book(session_token=TOKEN, password='a "quoted" pässword')
    assert found(secrets, f'{{"message":"opened {TOKEN}"}}') == ["session token"]
    assert found(secrets, f"2026-12-01 INFO x: token={TOKEN}.") == ["session token"]
    assert found(secrets, f"/reset-password/{TOKEN.replace('-', '')}?x") == ["session token"]
    # As JSON writes it (escaped quotes, \\u00e4) and as text lines do.
    assert found(secrets, '{"detail":"a \\"quoted\\" p\\u00e4ssword"}') == ["password"]
    assert found(secrets, 'detail=a "quoted" pässword') == ["password"]


def test_a_secret_glued_to_other_letters_or_digits_is_not_a_hit() -> None:
    secrets = book(session_token=TOKEN)
    assert found(secrets, f"x{TOKEN}") == []
    assert found(secrets, f"{TOKEN}9") == []


def test_a_code_counts_as_a_whole_number_outside_decimals_and_times() -> None:
    secrets = book(code=CODE)
    assert found(secrets, f'"code":"{CODE}"') == ["code"]
    assert found(secrets, f"wrong code {CODE}.") == ["code"]
    assert found(secrets, f'"duration_ms":12.{CODE}') == []
    assert found(secrets, f'"duration_ms":{CODE}.5') == []
    assert found(secrets, f"at 10:{CODE}") == []
    assert found(secrets, f"pid 1{CODE}") == []


def test_short_values_and_plain_words_are_not_searched_for() -> None:
    secrets = book(password="password", code="12345", link_id="request", pw="bob@example.com")
    assert len(secrets) == 0
    assert found(secrets, "login.password quatrix_mfa.request 12345 bob@example.com") == []


def test_the_masked_line_shows_the_kind_never_the_secret() -> None:
    secrets = book(session_token=TOKEN, code=CODE)
    line = f"{TOKEN} sent {CODE}"
    assert masked(line, list(secrets.search(line))) == "<session token> sent <code>"


INNER_CONFTEST = """
from tests.support.secrets_grep import (
    pytest_runtest_protocol,
    pytest_sessionfinish,
    pytest_sessionstart,
    pytest_terminal_summary,
)
"""

INNER_TESTS = f"""
import base64
import logging
import subprocess
import sys

import httpx

TOKEN = {TOKEN!r}
CODE = {CODE!r}
PASSWORD = "the inner run's passphrase"


def answer(request):
    return httpx.Response(200, json={{"session_id": TOKEN}})


def use_secrets():
    basic = base64.b64encode(f"a@example.com:{{PASSWORD}}".encode()).decode()
    with httpx.Client(transport=httpx.MockTransport(answer)) as http:
        http.get("http://mfa/api/1.0/session/login", headers={{"Authorization": "Basic " + basic}})
        http.post("http://mfa/api/1.0/session/login", json={{"code": CODE}})


def test_uses_secrets_and_logs_none():
    use_secrets()
    logging.getLogger("quatrix_mfa.request").info("took %s ms", f"12.{{CODE}}")


def test_logs_a_session_token():
    use_secrets()
    logging.getLogger("quatrix_mfa.request").info("opened %s", TOKEN)


def test_a_process_prints_a_password():
    use_secrets()
    # "quatrix_mfa" in its command line: a process of ours, its output is copied.
    script = "import sys  # quatrix_mfa\\nsys.stderr.write(sys.argv[1] + chr(10))"
    subprocess.run([sys.executable, "-c", script, "retrying with " + PASSWORD], check=True)
"""


def inner_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("QUATRIX_MFA_TEST_SECRETS_GREP", raising=False)
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TESTS)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_a_run_that_logs_a_secret_fails_naming_it_and_masking_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = inner_run(pytester, monkeypatch)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*= secrets in log lines =*",
            "session token logged by test_inner.py::test_logs_a_session_token*",
            '*"message":"opened <session token>"*',
            "password logged by test_inner.py::test_a_process_prints_a_password: quatrix-mfa*err*",
            "*retrying with <password>",
            "*3 passed, 2 logged secrets*",
        ]
    )
    assert TOKEN not in out and "the inner run's passphrase" not in out
    assert "12.<code>" not in out  # a code inside a decimal is no hit


def test_a_run_that_logs_no_secret_passes_and_says_what_it_searched(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = inner_run(pytester, monkeypatch, "-k", "logs_none")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["secrets grep: no secret in any log line; 1 log lines searched for 4 secrets*"]
    )
