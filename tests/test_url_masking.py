"""Issue 16 attack F4: a password in a database or SMTP URL never reaches an
error line, whatever characters it holds; a bad URL is one line naming the
variable and exit status 2 (the real command, in a subprocess)."""

from __future__ import annotations

import pytest

from quatrix_mfa.urlmask import mask_url
from tests.support.shell import Cli, refused
from tests.support.shell import cli as cli  # the fixture

CASES = [
    # (variable, URL, the secret that must not appear)
    ("DATABASE_URL", "postgresql://u:Top/Secret6@h/db", "Secret6"),
    ("DATABASE_URL", "postgresql://postgres:p@ss:w0rd@127.0.0.1:5432/x", "w0rd"),
    ("DATABASE_URL", "postgresql://u:Top?Secret7@127.0.0.1:1/db", "Secret7"),
    ("DATABASE_URL", "postgresql://u@127.0.0.1:1/db?password=Qsecret9", "Qsecret9"),
    ("SMTP_URL", "smtp://u:p@ss#word@localhost:25", "ss#word"),
    ("SMTP_URL", "smtp://u:Top?Secret8@localhost:25", "'Top'"),
]


@pytest.mark.parametrize(("variable", "url", "secret"), CASES)
def test_a_password_in_a_url_never_reaches_stderr(
    cli: Cli, variable: str, url: str, secret: str
) -> None:
    result = cli.run("migrate", **{variable: url})
    line = refused(result)
    assert secret not in result.stderr + result.stdout, line
    # The cause is named: the variable when the URL is wrong, the host when it is unreachable.
    assert f"QUATRIX_MFA_{variable}" in line or "127.0.0.1:1" in line, line


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://u:Top/Secret6@h/db", "postgresql://u:***@h/db"),
        ("x 'postgresql://u:p@ss:w0rd@h:5432/x' y", "x 'postgresql://u:***@h:5432/x' y"),
        ("smtp://u:p@ss#word@localhost:25", "smtp://u:***@localhost:25"),
        ("smtp://token@localhost", "smtp://***@localhost"),
        (
            "postgresql://h/db?sslmode=require&password=Qs9&x=1",
            "postgresql://h/db?sslmode=require&password=***&x=1",
        ),
        ("sqlite:////var/lib/mfa.db", "sqlite:////var/lib/mfa.db"),
    ],
)
def test_one_masking_rule_up_to_the_last_at(text: str, masked: str) -> None:
    assert mask_url(text) == masked
