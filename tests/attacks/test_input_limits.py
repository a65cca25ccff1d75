"""Attack 8, input limits: every field of every request body, as our own OpenAPI
document describes it, is sent NUL bytes, lone surrogates, bidi controls,
invisible characters, over-long strings and wrong types; bodies are sent just
over and far over the size limit, nested 10,000 deep, in UTF-16, with
10,000 list items, and under every wrong Content-Type; headers are sent 64 KiB
long and a thousand at a time, in-process and through the real server.

Why it matters: a 500, a FastAPI ``{"detail": ...}`` body or a half-done write
on hostile input is a crash or an inconsistency an attacker can aim; an
unbounded header or body is memory anyone can make the server hold. Each case
must answer a clear 4xx ErrorModel, and a database snapshot taken before and
after proves that nothing was written. The field list is derived from
``app.openapi()``, so a field added later is attacked without editing this file.
"""

from __future__ import annotations

import contextlib
import copy
import json
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from quatrix_mfa.api.http_protocol import MAX_HEAD
from quatrix_mfa.api.limits import MAX_BODY, MAX_DEPTH, MAX_HEADER_BYTES, MAX_HEADERS
from tests.conftest import Api, basic, error
from tests.servers import Server, server_env
from tests.support.database import snapshot
from tests.support.endpoints import (  # the ``caller`` and ``world`` fixtures, reused
    ENDPOINTS,
    JSON,
    Caller,
    World,
    caller,
    refused,
    world,
)

__all__ = ["caller", "world"]  # fixtures, imported for pytest

PREFIX = "/api/1.0"
# Refused in every string, wherever it is: invisible, reordering or not text at all.
REFUSED_TEXT = {
    "NUL": "a\u0000b",
    "lone high surrogate": "a\ud800b",
    "lone low surrogate": "\udc00",
    "reversed surrogate pair": "\ude80\ud83d",
    "right-to-left override": "evil\u202egpj.exe",
    "right-to-left isolate": "\u2067admin\u2069",
    "left-to-right mark": "admin\u200e",
    "zero-width space": "ad\u200bmin",
    "word joiner": "ad\u2060min",
    "byte order mark": "\ufeffadmin",
    "escape": "\u001b[2J",
    "C1 control": "a\u0085b",
}
# Not text where text is expected, not a number where a number is, and so on.
WRONG = {
    "string": [12345, 1.5, True, ["a"], {"a": "b"}],
    "number": ["5", True, float("nan"), float("inf"), float("-inf"), ["5"], {"a": 5}],
    "integer": ["5", True, 1.5, float("nan"), ["5"], {"a": 5}],
    "boolean": ["true", "yes", 1, 0, [True], {"a": True}],
    "array": ["a", 5, {"a": "b"}],
    "object": ["a", 5, ["a"], True],
}


# -- the request bodies, from our OpenAPI document ---------------------------------


@dataclass(frozen=True)
class Slot:
    """One place a value goes in a request body."""

    field: str  # the top-level property, which the answer's ``details`` must name
    path: tuple[str, ...]  # properties from the top, e.g. ("share_types", "public_share")
    schema: dict[str, Any]  # without its "null" alternative

    @property
    def kind(self) -> str:
        return str(self.schema.get("type", "object"))

    @property
    def text(self) -> dict[str, Any] | None:
        """The schema of the strings in this slot (itself, or its items), if any."""
        items = self.schema.get("items", {}) if self.kind == "array" else self.schema
        return items if items.get("type") == "string" else None

    def put(self, body: dict[str, Any], value: Any) -> dict[str, Any]:
        changed = copy.deepcopy(body)
        where = changed
        for name in self.path[:-1]:
            where = where.setdefault(name, {})
            if not isinstance(where, dict):
                raise AssertionError(f"{self.path}: no object to put into")
        where[self.path[-1]] = value
        return changed

    @property
    def max_length(self) -> int:
        return int((self.text or {}).get("maxLength", 64))  # enums: longer than any

    def text_value(self, text: str) -> Any:
        return [text] if self.kind == "array" else text


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    alternatives = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    assert len(alternatives) == 1, schema
    (schema,) = alternatives
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return _resolve(document, document["components"]["schemas"][name])
    return schema


def slots(document: dict[str, Any], schema: dict[str, Any]) -> list[Slot]:
    """Every leaf of a body schema (nested objects are walked into)."""
    found: list[Slot] = []

    def walk(schema: dict[str, Any], path: tuple[str, ...]) -> None:
        for name, prop in schema.get("properties", {}).items():
            resolved = _resolve(document, prop)
            if "properties" in resolved:
                walk(resolved, (*path, name))
            else:
                found.append(Slot((*path, name)[0], (*path, name), resolved))

    walk(_resolve(document, schema), ())
    return found


def _template(path: str) -> str:
    return path.split("{", 1)[0]  # "/reset-password/reset/{id}" and ".../{reset}" alike


def body_schemas(api: Api) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """POST path template -> (OpenAPI document, the request body's schema)."""
    document = api.http.app.openapi()  # type: ignore[attr-defined]
    found = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                assert method == "post", (method, path)
                content = operation["requestBody"]["content"]
                assert list(content) == ["application/json"], (path, list(content))
                found[_template(path.removeprefix(PREFIX))] = (
                    document,
                    content["application/json"]["schema"],
                )
    return found


def endpoint_slots(caller: Caller) -> list[Slot]:
    document, schema = body_schemas(caller.world.api)[_template(caller.endpoint.path)]
    return slots(document, schema)


def test_every_body_in_the_openapi_document_is_attacked_and_bounded(world: World) -> None:
    schemas = body_schemas(world.api)
    # A new endpoint with a body needs a valid body in tests/support/endpoints.ENDPOINTS.
    assert sorted(schemas) == sorted(_template(e.path) for e in ENDPOINTS.values())
    for path, (document, schema) in schemas.items():
        for slot in slots(document, schema):
            text = slot.text
            if text is not None:
                assert {"maxLength", "enum", "const"} & set(text), (path, slot.path)
            if slot.kind == "array":
                assert "maxItems" in slot.schema, (path, slot.path)
            assert slot.kind in WRONG, (path, slot.path, slot.kind)


# -- every field, every body ------------------------------------------------------


def clear(response: Any, status: int = 400, field: str | None = None) -> None:
    """``refused``, and nothing but the ErrorModel's keys: no FastAPI ``detail``."""
    refused(response, status, field)
    assert set(response.json()) <= {"code", "msg", "details"}, response.json()


def refused_naming(response: Any, slots: list[Slot]) -> None:
    """A 400 ErrorModel whose ``details`` names every one of ``slots``."""
    clear(response)
    named = list(response.json().get("details") or {})
    missing = [
        slot.path
        for slot in slots
        if not any(key == slot.field or key.startswith(slot.field + ".") for key in named)
    ]
    assert not missing, (missing, response.json())


def poisoned(caller: Caller, slots: list[Slot], value: Any) -> dict[str, Any]:
    """The valid body with ``value(slot)`` in each of ``slots`` at once."""
    body = caller.valid()
    for slot in slots:
        body = slot.put(body, value(slot))
    return body


def _element(caller: Caller, slot: Slot) -> Any:
    """A valid list element: the valid body's own, else one the schema describes."""
    sample: Any = caller.valid()
    for name in slot.path:
        sample = sample.get(name) if isinstance(sample, dict) else None
    if isinstance(sample, list) and sample:
        return sample[0]
    items = slot.schema["items"]
    if items.get("format") == "uuid":
        return str(uuid.uuid4())
    return items.get("enum", ["someone@example.com"])[0]


def test_every_field_refuses_hostile_text_overlong_values_wrong_types_and_long_lists(
    caller: Caller,
) -> None:
    """Each hostile value goes into every field at once; the answer must name them all.
    The list decision: admin id lists hold at most 1000 ids (schema and core agree);
    every list has a maxItems, and one more item is a 400 naming the list."""
    every = endpoint_slots(caller)
    texts = [slot for slot in every if slot.text is not None]
    for what, poison in REFUSED_TEXT.items():
        response = caller.send(poisoned(caller, texts, lambda slot: slot.text_value(poison)))
        assert response.status_code == 400, (what, response.text)
        refused_naming(response, texts)
    for char in ["a", "é", "\U0001f680"]:
        over = poisoned(caller, texts, lambda slot: slot.text_value(char * (slot.max_length + 1)))
        refused_naming(caller.send(over), texts)
    for i in range(max(len(values) for values in WRONG.values())):
        wrong = poisoned(caller, every, lambda slot: WRONG[slot.kind][i % len(WRONG[slot.kind])])
        refused_naming(caller.send(wrong), every)
    for slot in [slot for slot in every if slot.kind == "array"]:
        too_many = [_element(caller, slot)] * (int(slot.schema["maxItems"]) + 1)
        refused_naming(caller.send(slot.put(caller.valid(), too_many)), [slot])
        refused_naming(caller.send(slot.put(caller.valid(), ["a"] * 10_000)), [slot])
        refused_naming(caller.send(slot.put(caller.valid(), [["nested"]])), [slot])


def test_bodies_not_utf8_json_or_not_sent_as_json_are_refused(caller: Caller) -> None:
    valid = json.dumps(caller.valid())
    deep = '{"a": "\u2200", "x": ' + "[" * 10_000 + "]" * 10_000 + "}"
    for content in [
        valid.encode("utf-16"),  # json.loads would read it
        valid.encode("utf-32"),
        deep.encode("utf-16-le"),  # "∀" is bytes 00 22: a quote to a byte scanner
        valid.replace('"', '"\xe9', 1).encode("latin-1"),
        b'{"a": "\xc0\x80"}',  # an over-long UTF-8 NUL
        b'{"a": "\xed\xa0\x80"}',  # a surrogate, encoded
        b'{"a": "raw\x00nul"}',
        b'{"a": "raw\x1bescape"}',
    ]:
        clear(caller.raw(content))
    body = valid.encode()
    for content_type in ["application/xml", "text/json", "image/png", ";;;", "application/"]:
        clear(caller.raw(body, {"Content-Type": content_type}), field="body")
    http = caller.world.api.http
    for response in [
        http.post(caller.path, content=body, headers=caller.headers({})),  # no Content-Type
        http.post(caller.path, data=caller.valid(), headers=caller.headers({})),  # a real form
        http.post(caller.path, files={"f": ("a.json", body)}, headers=caller.headers({})),
    ]:
        clear(response, field="body")


def test_json_numbers_out_of_range_are_refused(world: World) -> None:
    before = snapshot(world.api)
    call = Caller(world, ENDPOINTS["user_create"])
    valid = json.dumps(call.valid(email="eve@example.com"))[:-1]
    for number in ["1e400", "-1e400", "NaN", "Infinity", "9" * 5000, "1" + "0" * 400 + ".0"]:
        clear(call.raw(f'{valid}, "quota": {number}}}'.encode()))
    assert snapshot(world.api) == before


def _reaches_the_app(response: Any) -> None:
    """Past the limits: the core's own answer (PIN is not active for the admin)."""
    error(response, 400, 15)


def test_a_body_exactly_at_the_size_limit_is_read_and_one_byte_more_is_413(world: World) -> None:
    before = snapshot(world.api)
    call = Caller(world, ENDPOINTS["profile_remove_mfa"])
    body = json.dumps({"auth_type": "PIN"}).encode()
    at_limit = body + b" " * (MAX_BODY - len(body))
    _reaches_the_app(call.raw(at_limit))
    clear(call.raw(at_limit + b" "), status=413)
    clear(call.raw(at_limit * 160), status=413)  # 10 MiB

    def chunks(total: int) -> Iterator[bytes]:  # no Content-Length: counted while read
        yield body
        for _ in range((total - len(body)) // 1024):
            yield b" " * 1024

    clear(call.raw(chunks(MAX_BODY + 1024)), status=413)
    clear(call.raw(chunks(10 * 1024 * 1024)), status=413)
    for length in ["-1", "abc", "1e9", str(10**30)]:
        clear(call.raw(body, {**JSON, "Content-Length": length}), status=413)
    assert snapshot(world.api) == before


def test_json_exactly_at_the_depth_limit_is_read_and_one_level_more_is_refused(
    world: World,
) -> None:
    before = snapshot(world.api)
    call = Caller(world, ENDPOINTS["profile_remove_mfa"])

    def nested(depth: int) -> bytes:  # the body object itself is one level
        inner = "[" * (depth - 1) + "]" * (depth - 1)
        return f'{{"auth_type": "PIN", "x": {inner}}}'.encode()

    _reaches_the_app(call.raw(nested(MAX_DEPTH)))
    clear(call.raw(nested(MAX_DEPTH + 1)), field="body")
    # Brackets inside strings are not nesting, escaped quotes do not end a string.
    _reaches_the_app(call.raw(b'{"auth_type": "PIN", "x": "\\"' + b"[" * 10_000 + b'"}'))
    clear(call.raw(b'{"a": "\\\\", "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"))
    assert snapshot(world.api) == before


def test_odd_but_legitimate_text_is_kept_exactly(world: World) -> None:
    """Combining marks, joiners, tag sequences and astral characters are text:
    they are stored and shown as sent, not refused and not normalised."""
    api = world.api
    texts = [
        "Zoe\u0308 e\u0301",  # decomposed, kept decomposed
        "Z" + "\u0336\u0301\u0489" * 50,  # "zalgo" within the length limit
        "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # a flag
        "\u05e9\u05dc\u05d5\u05dd \u0633\u0644\u0627\u0645",  # Hebrew and Arabic, no controls
        "\U0001d54f\U0001d560\U0001d55a",  # astral letters
    ]
    for i, text in enumerate(texts):
        created = api.post(
            "/user/create", {"name": text, "email": f"o{i}@example.com"}, world.admin
        )
        assert created.status_code == 201, created.text
        assert api.get(f"/user/metadata/{created.json()['id']}", world.admin).json()["name"] == text
        changed = api.post("/settings/set", {"title": text, "email_footer": text}, world.admin)
        assert changed.status_code == 200, changed.text
        shown = api.get("/settings", world.admin).json()
        assert (shown["title"], shown["email_footer"]) == (text, text)


# -- headers ----------------------------------------------------------------------

LONG = MAX_HEADER_BYTES * 2  # 64 KiB


def test_long_or_many_headers_are_431_before_anything_runs(world: World) -> None:
    before = snapshot(world.api)
    http = world.api.http
    token = {"X-Auth-Token": world.admin}
    remove = json.dumps({"auth_type": "PIN"})
    many = [(f"X-Filler-{i}", "x") for i in range(MAX_HEADERS)]
    for headers in [
        {"X-Auth-Token": "a" * LONG},
        {"Authorization": "Basic " + "A" * LONG},
        {"Authorization": basic("admin@example.com", "p" * LONG)},
        {**token, "X-Forwarded-For": "1.2.3.4, " * (LONG // 9)},
        {**token, "Cookie": "c=" + "x" * LONG},
        [*token.items(), *many],
        [*token.items(), *(("X-Forwarded-For", "1.2.3.4") for _ in range(1000))],
    ]:
        for method, path in [("GET", "/session/login"), ("GET", "/profile")]:
            clear(http.request(method, path, headers=headers), status=431, field="headers")
        sent = http.post("/profile/remove-mfa", content=remove, headers=headers)
        clear(sent, status=431, field="headers")
    # Just under the limits, the request reaches the app.
    error(http.get("/profile", headers={"X-Auth-Token": "a" * (MAX_HEADER_BYTES // 2)}), 401, 1)
    assert http.get("/profile", headers=[*token.items(), *many[:-10]]).status_code == 200
    assert snapshot(world.api) == before


# -- through the real server ------------------------------------------------------


@pytest.fixture
def server(api: Api, tmp_path: Path, db_kind: str, database_url: str) -> Iterator[Server]:
    """``quatrix-mfa serve`` on the ``api`` fixture's database and key file."""
    env = server_env(tmp_path, db_kind, database_url)
    env["QUATRIX_MFA_DATA_DIR"] = str(tmp_path / "data")
    env["QUATRIX_MFA_DATABASE_URL"] = database_url
    running = Server(env, log=tmp_path / "serve.log")
    running.start()
    try:
        running.wait_healthy()
        yield running
    finally:
        running.stop()


def exchange(server: Server, head: bytes, body: bytes = b"") -> bytes:
    """Send raw bytes; the answer up to the server's close, whatever it read."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        with contextlib.suppress(OSError):  # closed early: the server stopped reading
            sock.sendall(head + body)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
    return answer


def error_model(answer: bytes, status: int) -> dict[str, Any]:
    """The ErrorModel of a raw answer, which has the app's headers whoever sent
    it (the app, or the HTTP protocol for a request the app never saw)."""
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), answer[:300]
    fields = head.lower().split(b"\r\n")
    assert b"content-type: application/json" in fields, head
    assert b"cache-control: no-store" in fields, head
    assert sum(f.startswith(b"x-request-id: ") for f in fields) == 1, head
    body: dict[str, Any] = json.loads(payload)
    assert isinstance(body["code"], int) and isinstance(body["msg"], str), body
    assert "detail" not in body, body
    return body


def request_id_of(answer: bytes) -> str:
    fields = answer.partition(b"\r\n\r\n")[0].decode().split("\r\n")
    [value] = [f.split(":", 1)[1] for f in fields if f.lower().startswith("x-request-id:")]
    return value.strip()


def request_head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {PREFIX}{path} HTTP/1.1", "Host: x", "Connection: close", *headers]
    return "\r\n".join(lines).encode() + b"\r\n\r\n"


def test_the_real_server_bounds_request_heads_and_bodies(server: Server, world: World) -> None:
    before = snapshot(world.api)
    token = f"X-Auth-Token: {world.admin}"
    # Over the app's limit, under the server's: the app answers.
    xff = request_head("GET", "/profile", token, "X-Forwarded-For: " + "1" * (LONG - 1024))
    assert error_model(exchange(server, xff), 431)["details"] == {
        "headers": f"at most {MAX_HEADERS} fields and {MAX_HEADER_BYTES} bytes"
    }
    # A page's path too: the same ErrorModel, not to be stored either.
    page = xff.replace(f"GET {PREFIX}/profile ".encode(), b"GET /login ", 1)
    assert page.startswith(b"GET /login ")
    assert error_model(exchange(server, page), 431)["code"] == 2
    # Over the server's limit: answered as soon as it is, before the head even ends
    # (plain httptools would wait for the rest, holding all of it).
    long_value = "X-Long: " + "a" * MAX_HEAD
    many = (f"X-{i}: v" for i in range(MAX_HEAD // 10 + 100))
    for unfinished in [
        request_head("GET", "/profile", long_value),
        request_head("GET", "/", *many),
    ]:
        answer = exchange(server, unfinished.removesuffix(b"\r\n"))
        assert error_model(answer, 431) == {"code": 2, "msg": "Request headers too large"}
    # Far over it, the connection ends early; nothing is answered but an ErrorModel.
    huge = request_head("GET", "/profile", token, "X-Long: " + "a" * 16 * 1024 * 1024)
    answer = exchange(server, huge)
    assert answer == b"" or error_model(answer, 431)["code"] == 2, answer[:300]
    # Not HTTP at all (a NUL in a header): still an ErrorModel, and its log line
    # carries the id the answer names.
    not_http = exchange(server, request_head("GET", "/profile", "X-A: a\0b"))
    assert error_model(not_http, 400)
    request_id = request_id_of(not_http)
    assert server.log is not None
    lines = server.log.read_text().splitlines()
    logged = [json.loads(line) for line in lines if request_id in line]
    assert [(line["status"], line["route"]) for line in logged] == [(400, "-")]
    # Chunked bodies, with no Content-Length, are counted while read.
    for size in [MAX_BODY + 1, 4 * 1024 * 1024]:
        post = request_head(
            "POST", "/profile/remove-mfa", token,
            "Content-Type: application/json", "Transfer-Encoding: chunked",
        )  # fmt: skip
        chunked = b"".join(b"400\r\n" + b" " * 1024 + b"\r\n" for _ in range(size // 1024 + 1))
        answer = exchange(server, post, chunked + b"0\r\n\r\n")
        assert error_model(answer, 413)["details"] == {"body": f"at most {MAX_BODY} bytes"}
    # The server is fine, and nothing was written.
    with httpx.Client(base_url=server.api, timeout=30) as http:
        assert http.get("/profile", headers={"X-Auth-Token": world.admin}).status_code == 200
    assert snapshot(world.api) == before
