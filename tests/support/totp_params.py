"""TOTP codes for a seed of any parameters (issue 13), read from its otpauth:// URI."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from quatrix_mfa.core.factors import totp
from tests.support.codes import HasClock, secret_bytes


def uri_parameters(uri: str) -> totp.Parameters:
    """The algorithm, digits and period an authenticator app reads from ``uri``."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(uri).query).items()}
    return totp.Parameters(query["algorithm"], int(query["digits"]), int(query["period"]))


def code_for(source: HasClock, secret_b32: str, params: totp.Parameters, steps: int = 0) -> str:
    """The code an app set up with ``params`` shows now (``steps`` periods away)."""
    when = source.clock.now() + steps * params.period
    return totp.code_at(secret_bytes(secret_b32), when, params.digits, params.digest, params.period)


def enroll(api: Any, token: str) -> tuple[str, str, totp.Parameters, dict[str, Any]]:
    """Enroll TOTP on ``token``'s user as an app would, from the URI: (new full
    session, secret, the URI's parameters, the generate answer). The clock
    then moves one period on, past the step the enrollment spent."""
    generated = api.get("/profile/2fa/generate", token).json()
    params = uri_parameters(generated["uri"])
    code = code_for(api, generated["secret"], params)
    response = api.post("/profile/set-mfa", {"auth_type": "2FA", "code": code}, token)
    assert response.status_code == 200, response.text
    api.clock.advance(params.period)
    return str(response.json()["session_ids"]), generated["secret"], params, generated
