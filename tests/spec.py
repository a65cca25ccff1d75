"""The upstream Swagger 2.0 subset, as a validator of our responses.

Read from ``../shared/spec/quatrix-api-subset.yaml`` (never copied into the
project). Every response the test client sees goes through ``check``.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import yaml

SHARED = Path(__file__).resolve().parents[2] / "shared"
SPEC_PATH = SHARED / "spec" / "quatrix-api-subset.yaml"
PREFIX = "/api/1.0"


@functools.cache
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text())


@functools.cache
def _routes() -> list[tuple[re.Pattern[str], str]]:
    routes = []
    for template in spec()["paths"]:
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        routes.append((re.compile(pattern), template))
    return routes


def operation(path: str, method: str) -> dict[str, Any] | None:
    if not path.startswith(PREFIX):
        return None
    rest = path[len(PREFIX) :]
    for pattern, template in _routes():
        if pattern.match(rest):
            return spec()["paths"][template].get(method.lower())  # type: ignore[no-any-return]
    return None


def validator(schema: dict[str, Any]) -> jsonschema.Draft4Validator:
    root = {**schema, "definitions": spec()["definitions"]}
    return jsonschema.Draft4Validator(
        root, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )


def error_model() -> dict[str, Any]:
    return {"$ref": "#/definitions/ErrorModel"}


def _design_additions(path: str, method: str) -> dict[int, Any]:
    """Answers DESIGN.md adds to the spec: POST /session/login answers 207 when
    a second factor follows the first (2FA, then PIN)."""
    if path == f"{PREFIX}/session/login" and method.upper() == "POST":
        return {207: spec()["paths"]["/session/login"]["get"]["responses"][207]}
    return {}


class SpecViolation(AssertionError):
    pass


def check(response: httpx.Response) -> None:
    """Raise SpecViolation if ``response`` breaks the upstream spec or DESIGN.md."""
    request = response.request
    op = operation(request.url.path, request.method)
    status = response.status_code
    if op is None:
        if status >= 400 and request.url.path.startswith(PREFIX):
            _validate(response, error_model())
        return
    documented = {**op.get("responses", {}), **_design_additions(request.url.path, request.method)}
    entry = documented.get(status)
    if entry is None:
        if status < 400:
            raise SpecViolation(
                f"{request.method} {request.url.path}: undocumented success {status}"
            )
        _validate(response, error_model())
        return
    schema = entry.get("schema")
    if schema is not None:
        _validate(response, schema)
    if status == 207:
        code = response.headers.get("Mfa-Code")
        if code is None or not code.isdigit():
            raise SpecViolation("207 without a numeric Mfa-Code header")


def _validate(response: httpx.Response, schema: dict[str, Any]) -> None:
    try:
        body = response.json()
    except json.JSONDecodeError as error:
        raise SpecViolation(f"{response.request.url.path}: body is not JSON") from error
    errors = sorted(validator(schema).iter_errors(body), key=str)
    if errors:
        request = response.request
        where = f"{request.method} {request.url.path} {response.status_code}"
        raise SpecViolation(f"{where}: {errors[0].message}")
