"""Our own OpenAPI document (3.1, served at /api/1.0/openapi.json) agrees with
the upstream Swagger 2.0 subset: same paths and methods, every upstream request
field and enum accepted, every upstream response field documented."""

from __future__ import annotations

from typing import Any

import pytest

from tests import spec
from tests.conftest import Api

Schema = dict[str, Any]
SUCCESS = ("200", "201", "202", "207")


@pytest.fixture
def ours(api: Api) -> Schema:
    response = api.get("/openapi.json")
    assert response.status_code == 200, response.text
    doc: Schema = response.json()
    assert doc["openapi"].startswith("3.1")
    return doc


def _resolve(schema: Schema, doc: Schema) -> Schema:
    """Follow $refs (``#/definitions/X`` upstream, ``#/components/schemas/X`` ours)."""
    seen = 0
    while "$ref" in schema:
        parts = schema["$ref"].lstrip("#/").split("/")
        target: Any = doc
        for part in parts:
            target = target[part]
        schema = target
        seen += 1
        assert seen < 20, "reference cycle"
    return schema


def _variants(schema: Schema, doc: Schema) -> list[Schema]:
    """Our schema's alternatives without ``null`` (pydantic writes ``X | None`` as anyOf)."""
    schema = _resolve(schema, doc)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        out = [_resolve(s, doc) for s in alternatives]
        return [s for s in out if s.get("type") != "null"]
    return [schema]


def _kind(schema: Schema) -> str | None:
    if "properties" in schema:
        return "object"
    kind = schema.get("type")
    return str(kind) if kind is not None else None


COMPATIBLE = {
    "string": {"string"},
    "number": {"number", "integer"},
    "integer": {"integer"},
    "boolean": {"boolean"},
    "array": {"array"},
    "object": {"object"},
}


def _enum(schema: Schema) -> set[Any]:
    """Allowed values: pydantic writes a one-value Literal as ``const``."""
    if "const" in schema:
        return {schema["const"]}
    return set(schema.get("enum", []))


def _compare(ours: Schema, theirs: Schema, mine: Schema, where: str, *, request: bool) -> list[str]:
    """Problems where ``mine`` (in our doc ``ours``) does not cover ``theirs`` (upstream)."""
    theirs = _resolve(theirs, spec.spec())
    kind = _kind(theirs)
    candidates = _variants(mine, ours)
    if kind is None:
        return []
    matching = [m for m in candidates if _kind(m) in COMPATIBLE[kind]]
    if not matching:
        return [f"{where}: upstream {kind}, ours {[_kind(m) for m in candidates]}"]
    problems: list[str] = []
    for candidate in matching[:1]:
        if "enum" in theirs:
            their_values, our_values = set(theirs["enum"]), _enum(candidate)
            if request and not their_values <= our_values:
                problems.append(f"{where}: enum {sorted(their_values - our_values)} refused")
            if not request and not our_values <= their_values:
                problems.append(f"{where}: enum {sorted(our_values - their_values)} undocumented")
        if kind == "array" and "items" in theirs:
            problems += _compare(
                ours, theirs["items"], candidate.get("items", {}), f"{where}[]", request=request
            )
        if kind == "object":
            our_props = candidate.get("properties", {})
            for name, prop in theirs.get("properties", {}).items():
                if name not in our_props:
                    problems.append(f"{where}.{name}: missing")
                else:
                    problems += _compare(
                        ours, prop, our_props[name], f"{where}.{name}", request=request
                    )
            if request:
                extra_required = set(candidate.get("required", [])) - set(
                    theirs.get("required", [])
                )
                if extra_required:
                    problems.append(f"{where}: we require {sorted(extra_required)}")
    return problems


def _upstream_operations() -> list[tuple[str, str, Schema]]:
    return [
        (path, method, op)
        for path, ops in spec.spec()["paths"].items()
        for method, op in ops.items()
    ]


def _json_schema(entry: Schema) -> Schema | None:
    content = entry.get("content", {}).get("application/json")
    return None if content is None else content.get("schema")


def test_every_upstream_path_and_method_is_served(ours: Schema) -> None:
    missing = [
        f"{method.upper()} {path}"
        for path, method, _ in _upstream_operations()
        if method not in ours["paths"].get(spec.PREFIX + path, {})
    ]
    assert not missing
    assert len(_upstream_operations()) >= 24


def test_every_upstream_success_status_is_documented(ours: Schema) -> None:
    missing = []
    for path, method, op in _upstream_operations():
        documented = ours["paths"][spec.PREFIX + path][method]["responses"]
        for status in op["responses"]:
            if str(status) in SUCCESS and str(status) not in documented:
                missing.append(f"{method.upper()} {path} {status}")
    assert not missing


def test_every_upstream_request_field_and_enum_is_accepted(ours: Schema) -> None:
    problems: list[str] = []
    checked = 0
    for path, method, op in _upstream_operations():
        for parameter in op.get("parameters", []):
            if parameter.get("in") != "body":
                continue
            body = ours["paths"][spec.PREFIX + path][method].get("requestBody")
            mine = _json_schema(body) if body else None
            if mine is None:
                problems.append(f"{method.upper()} {path}: no JSON request body documented")
                continue
            if parameter.get("required"):
                assert body is not None and body.get("required") is True, path
            problems += _compare(
                ours, parameter["schema"], mine, f"{method.upper()} {path}", request=True
            )
            checked += 1
    assert not problems, "\n".join(problems)
    assert checked >= 13


def test_every_upstream_response_field_is_documented_with_a_compatible_type(ours: Schema) -> None:
    problems: list[str] = []
    checked = 0
    for path, method, op in _upstream_operations():
        for status, entry in op["responses"].items():
            if str(status) not in SUCCESS or "schema" not in entry:
                continue
            documented = ours["paths"][spec.PREFIX + path][method]["responses"].get(str(status))
            mine = _json_schema(documented) if documented else None
            where = f"{method.upper()} {path} {status}"
            if mine is None:
                problems.append(f"{where}: no JSON response schema")
                continue
            problems += _compare(ours, entry["schema"], mine, where, request=False)
            checked += 1
    assert not problems, "\n".join(problems)
    assert checked >= 20


def test_comparison_notices_a_missing_field_and_a_missing_enum_value(ours: Schema) -> None:
    """The checker itself can fail: a trimmed copy of our schema is reported."""
    theirs = {"$ref": "#/definitions/UserCreateReq"}
    mine = _resolve({"$ref": "#/components/schemas/UserCreateReq"}, ours)
    trimmed = {**mine, "properties": dict(mine["properties"])}
    del trimmed["properties"]["quota"]
    trimmed["properties"]["status"] = {"type": "string", "enum": ["A"]}
    problems = _compare(ours, theirs, trimmed, "UserCreateReq", request=True)
    assert "UserCreateReq.quota: missing" in problems
    assert any("UserCreateReq.status: enum ['D']" in p for p in problems)


def test_comparison_notices_a_wrong_response_type_and_an_extra_enum_value(ours: Schema) -> None:
    mine = _resolve({"$ref": "#/components/schemas/UserResp"}, ours)
    changed = {**mine, "properties": dict(mine["properties"])}
    changed["properties"]["created"] = {"type": "string"}
    changed["properties"]["super_admin"] = {"type": "string", "enum": ["Y", "N", "X"]}
    problems = _compare(
        ours, {"$ref": "#/definitions/UserResp"}, changed, "UserResp", request=False
    )
    assert any(p.startswith("UserResp.created: upstream number") for p in problems)
    assert any("UserResp.super_admin: enum ['X'] undocumented" in p for p in problems)
    assert _compare(ours, {"$ref": "#/definitions/UserResp"}, mine, "UserResp", request=False) == []


def test_documented_errors_are_the_error_model_and_never_422(ours: Schema, api: Api) -> None:
    """Bad input answers 400 (DESIGN.md), so the document must not promise a 422."""
    problems = []
    for path, ops in ours["paths"].items():
        for method, op in ops.items():
            for status, entry in op["responses"].items():
                if not status.startswith("4"):
                    continue
                schema = _json_schema(entry) or {}
                if status == "422" or schema.get("$ref") != "#/components/schemas/ErrorModel":
                    problems.append(f"{method.upper()} {path} {status}")
    assert not problems
    assert "HTTPValidationError" not in ours["components"]["schemas"]
    response = api.post("/reset-password/request", {"email": "not a list"})
    assert response.status_code == 400
