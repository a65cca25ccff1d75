"""Where the whole-run secrets grep learns the secrets a run used: at the
boundary every test crosses, the HTTP exchange (every httpx client, the
in-process ``TestClient`` included), the requests a browser sends, and the
environment of the ``quatrix-mfa`` processes a test starts.

From a request: the password of Basic auth (and the header's credentials as
sent), a bearer token, ``X-Auth-Token`` (unless refused) and
``X-Device-Token``, our cookies, the id in a mailed link's path (unless
refused), and the secret fields of a JSON or form body. From a mail a test
reads from the outbox: the ids of its links. From an answer: session ids,
TOTP secrets (also inside the ``otpauth://`` URI and on the enrollment page),
recovery codes (JSON and page), ``X-Device-Token`` and the cookies set.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx

Record = Callable[[str, str], None]  # (kind, value)

# Fields of a request body (JSON or form) that carry a secret.
REQUEST_FIELDS = {
    "password": "password",
    "new_password": "password",
    "current_password": "password",
    "confirm_password": "password",
    "old_password": "password",
    "code": "code or PIN",
    "pin": "PIN",
    "csrf_token": "CSRF token",
    "token": "token",
}
# Fields of a JSON answer that carry one.
ANSWER_FIELDS = {
    "session_id": "session token",
    "session_ids": "session token",
    "secret": "TOTP secret",
    "recovery_codes": "recovery code",
}
HEADERS = {"x-auth-token": "session token", "x-device-token": "device token"}
COOKIE_PREFIX = "qmfa_"  # ours, after any __Host- prefix: session, pre-session, device
# The id of a mailed link (password set or reset, email confirmation, recovery
# cancel) in the path of a page or API call; our ids are UUIDs.
LINK_ID = re.compile(
    r"/(?:reset-password(?:/reset|/metadata)?|confirm-email|recover-mfa/cancel)/([A-Za-z0-9_-]{16,})"
)
PAGE_SECRET = re.compile(r'data-totp-secret="([^"]+)"')
PAGE_RECOVERY_CODE = re.compile(r"data-recovery-code>([^<]+)<")
# Settings a test gives a server process that it must never print.
ENV_SECRETS = {"QUATRIX_MFA_METRICS_TOKEN": "metrics token"}
ENV_URLS = {
    "QUATRIX_MFA_DATABASE_URL": "database password",
    "QUATRIX_MFA_SMTP_URL": "SMTP password",
}


def from_request(request: httpx.Request, record: Record) -> None:
    """The secrets a request carries: headers, cookies, the link id in its path,
    its body. Not its ``X-Auth-Token``: see :func:`from_answer`."""
    _authorization(request.headers.get("authorization", ""), record)
    for value in request.headers.get_list("x-device-token"):
        record(HEADERS["x-device-token"], value)
    for cookie in request.headers.get_list("cookie"):
        for pair in cookie.split(";"):
            name, _, value = pair.strip().partition("=")
            if COOKIE_PREFIX in name:
                record("cookie", value)
    try:
        body = request.content
    except httpx.RequestNotRead:  # a streamed upload: not ours
        return
    from_body(request.headers.get("content-type", ""), body, record)


def from_url(url: str, record: Record) -> None:
    """The id of a mailed link in the path of ``url``."""
    from_text(urlsplit(url).path, record)


def from_text(text: str, record: Record) -> None:
    """The ids of the mailed links in ``text`` (a path, a mail's body)."""
    for found in LINK_ID.finditer(text):
        record("link id", found.group(1))


def from_body(content_type: str, body: bytes | str, record: Record) -> None:
    """Secret fields of a JSON object or a urlencoded form."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if not text:
        return
    if "json" in content_type:
        _fields(_json_object(text), REQUEST_FIELDS, record)
    elif "x-www-form-urlencoded" in content_type:
        _fields(dict(parse_qsl(text, keep_blank_values=False)), REQUEST_FIELDS, record)


def from_answer(response: httpx.Response, record: Record) -> None:
    """The secrets an answer hands out: headers, cookies set, JSON fields, page
    markers. And from the request, only if the service took it: its
    ``X-Auth-Token`` unless refused (401), the link id in its path unless the
    answer is an error: tests forge tokens and link ids from values that are
    no secret (a user id) to see them refused, while every session the
    service opens is kept from its answer and every link from the mail."""
    if response.status_code != 401:
        for value in response.request.headers.get_list("x-auth-token"):
            record(HEADERS["x-auth-token"], value)
    if response.status_code < 400:  # a link id the service took (not a fuzzer's user id)
        from_url(str(response.request.url), record)
    for name, kind in HEADERS.items():
        for value in response.headers.get_list(name):
            record(kind, value)
    for cookie in response.headers.get_list("set-cookie"):
        name, _, rest = cookie.partition("=")
        if COOKIE_PREFIX in name:
            record("cookie", rest.split(";", 1)[0].strip('"'))
    try:
        text = response.text
    except httpx.ResponseNotRead:  # streamed: the test reads it, or it holds nothing of ours
        return
    content_type = response.headers.get("content-type", "")
    if "json" in content_type:
        answer = _json_object(text)
        _fields(answer, ANSWER_FIELDS, record)
        uri = answer.get("uri")
        if isinstance(uri, str) and uri.startswith("otpauth://"):
            for secret in parse_qs(urlsplit(uri).query).get("secret", []):
                record("TOTP secret", secret)
    elif "html" in content_type:
        for secret in PAGE_SECRET.findall(text):
            record("TOTP secret", secret)
        for code in PAGE_RECOVERY_CODE.findall(text):
            record("recovery code", code.strip())


def from_browser_request(request: Any, record: Record) -> None:
    """A Playwright request: the link id in its URL and the fields of a posted form."""
    from_url(request.url, record)
    body = request.post_data
    if body:
        from_body(request.headers.get("content-type", ""), body, record)


def from_environment(env: Mapping[str, str], record: Record) -> None:
    """Secrets in the settings of a server or command a test starts."""
    for name, kind in ENV_SECRETS.items():
        if env.get(name):
            record(kind, env[name])
    for name, kind in ENV_URLS.items():
        try:
            password = urlsplit(env.get(name, "")).password
        except ValueError:  # a malformed URL a test hands over on purpose
            continue
        if password:
            record(kind, password)


def _authorization(header: str, record: Record) -> None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        record("bearer token", value.strip())
    elif scheme.lower() == "basic" and value:
        record("Basic credentials", value.strip())
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return
        record("password", decoded.partition(":")[2])


def _json_object(text: str) -> dict[str, Any]:
    """The JSON object ``text`` holds; empty for anything else."""
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):  # a test's malformed or absurd body
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _fields(fields: dict[str, Any], kinds: Mapping[str, str], record: Record) -> None:
    for name, kind in kinds.items():
        value = fields.get(name)
        values = value if isinstance(value, list) else [value]
        for one in values:
            if isinstance(one, str):
                record(kind, one)
