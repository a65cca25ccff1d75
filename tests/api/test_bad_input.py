"""Bad input never gives a 500: always a 400 (or 413) ErrorModel, and the data
stays as it was (DESIGN.md, "Errors": "Never a 500 for bad input")."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import Api, basic
from tests.support.database import snapshot
from tests.support.endpoints import (  # the ``world`` and ``caller`` fixtures too
    ENDPOINTS,
    NEW_PASSWORD,
    Caller,
    World,
    caller,
    refused,
    world,
)

__all__ = ["caller", "world"]  # fixtures, imported for pytest

IDS_ENDPOINTS = [name for name, e in ENDPOINTS.items() if e.fields.get("ids") == "ids"]

WRONG_TYPES = {
    "str": [12345, 1.5, True, ["a"], {"a": "b"}],
    "enum": [12345, True, ["2FA"], {"a": "b"}],
    "list": ["a@example.com", 12345, {"a": "b"}, [12345], [["a"]], True],
    "ids": ["00000000-0000-4000-8000-000000000000", 12345, {"a": "b"}, [12345], [["a"]]],
    "enumlist": ["2FA", 12345, {"a": "b"}, [12345]],
    "bool": ["maybe", 12345, ["a"], {"a": "b"}],
    "num": ["lots", ["a"], {"a": "b"}],
    "obj": ["a", 12345, ["a"]],
}
UNKNOWN_ENUMS = {"auth_type": "SMS", "status": "X", "super_admin": "maybe"}
POISON = ["nul\u0000byte", "lone\ud800surrogate", "\udfff", "bell\u0007", "del\u007f"]


def test_malformed_or_non_object_json_is_refused(caller: Caller) -> None:
    for content in [b'{"auth_type": ', b"{'a': 1}", b"", b"\xff\xfe{}", b"[}", b"NaN-ish"]:
        refused(caller.raw(content))
    for body in [[], [caller.valid()], "a string", 12345, None, True]:
        refused(caller.send(body))


def test_wrong_field_types_are_refused(caller: Caller) -> None:
    for name, kind in caller.endpoint.fields.items():
        for wrong in WRONG_TYPES[kind]:
            refused(caller.send(caller.valid(**{name: wrong})), field=name)


def test_null_or_missing_required_fields_are_refused(caller: Caller) -> None:
    for name in caller.endpoint.required:
        refused(caller.send(caller.valid(**{name: None})), field=name)
        body = caller.valid()
        del body[name]
        refused(caller.send(body), field=name)
    if caller.endpoint.required:
        refused(caller.send({}))


def test_unknown_enum_values_are_refused(caller: Caller) -> None:
    enums = [n for n, kind in caller.endpoint.fields.items() if kind in ("enum", "enumlist")]
    for name in enums:
        wrong = ["SMS"] if caller.endpoint.fields[name] == "enumlist" else UNKNOWN_ENUMS[name]
        for value in [wrong, "", "2fa" if name == "auth_type" else "a"]:
            refused(caller.send(caller.valid(**{name: value})), field=name)


def test_nul_bytes_lone_surrogates_and_control_characters_are_refused(caller: Caller) -> None:
    for name, kind in caller.endpoint.fields.items():
        for poison in POISON:
            if kind in ("str", "enum"):
                refused(caller.send(caller.valid(**{name: poison})), field=name)
            elif kind in ("list", "ids", "enumlist"):
                refused(caller.send(caller.valid(**{name: [poison]})), field=name)


def test_over_long_strings_are_refused(caller: Caller) -> None:
    long = "a" * 5000
    for name, kind in caller.endpoint.fields.items():
        if kind in ("str", "enum"):
            refused(caller.send(caller.valid(**{name: long})), field=name)
        elif kind in ("list", "ids"):
            refused(caller.send(caller.valid(**{name: [long]})), field=name)


def test_body_over_64_kib_is_413(caller: Caller) -> None:
    huge = json.dumps(caller.valid(padding="a" * 70_000)).encode()
    refused(caller.raw(huge), status=413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        for start in range(0, len(huge), 4096):
            yield huge[start : start + 4096]

    refused(caller.raw(chunks()), status=413)


def test_json_nested_10000_deep_is_refused(caller: Caller) -> None:
    refused(caller.raw(b"[" * 10_000 + b"]" * 10_000))
    refused(caller.raw(b'{"a":' * 10_000 + b"1" + b"}" * 10_000))
    nested = (
        json.dumps(caller.valid()).encode()[:-1] + b', "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    )
    refused(caller.raw(nested))


def test_text_plain_json_body_is_refused(caller: Caller) -> None:
    body = json.dumps(caller.valid()).encode()
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]:
        refused(caller.raw(body, {"Content-Type": content_type}))


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_unknown_extra_fields_are_ignored(world: World, name: str) -> None:
    endpoint = ENDPOINTS[name]
    endpoint.prepare(world)
    call = Caller(world, endpoint)
    extras = {"unexpected": 1, "another_one": {"nested": [1, "two", None]}, "ids_extra": ["x"]}
    response = call.send(call.valid(**extras))
    assert response.status_code in (200, 201, 202), response.text


@pytest.mark.parametrize("name", IDS_ENDPOINTS)
def test_non_uuid_ids_are_refused_naming_the_field(world: World, name: str) -> None:
    before = snapshot(world.api)
    call = Caller(world, ENDPOINTS[name])
    for ids in [["not-a-uuid"], [""], ["123"], [world.bob + "0"], [world.bob[:-1]], []]:
        refused(call.send(call.valid(ids=ids)), field="ids")
    # One bad id among good ones: all or nothing.
    refused(call.send(call.valid(ids=[world.bob, "nope"])), field="ids")
    assert snapshot(world.api) == before


@pytest.mark.parametrize("name", IDS_ENDPOINTS)
def test_too_many_ids_are_refused(world: World, name: str) -> None:
    before = snapshot(world.api)
    call = Caller(world, ENDPOINTS[name])
    refused(call.send(call.valid(ids=[1] * 10_000)), field="ids")
    refused(call.send(call.valid(ids=["a"] * 10_000)), field="ids")
    many = [str(uuid.uuid4()) for _ in range(1000)] + [world.bob]
    refused(call.send(call.valid(ids=many)), field="ids")
    # 10,000 real UUIDs do not even fit the body limit.
    refused(call.send(call.valid(ids=[str(uuid.uuid4()) for _ in range(10_000)])), status=413)
    assert snapshot(world.api) == before


def test_non_uuid_path_ids_are_refused(world: World) -> None:
    before = snapshot(world.api)
    api = world.api
    for bad in ["not-a-uuid", "123", world.bob + "0", "%00", "%ED%A0%80", "a" * 300]:
        refused(api.get(f"/user/metadata/{bad}", world.admin), field="id")
        refused(api.get(f"/reset-password/metadata/{bad}"), field="id")
        refused(api.post(f"/reset-password/reset/{bad}", {"password": NEW_PASSWORD}), field="id")
    assert snapshot(world.api) == before


def test_long_or_garbage_credentials_are_401(world: World) -> None:
    before = snapshot(world.api)
    api = world.api
    for token in [b"x" * 10_000, (world.admin + "x" * 10_000).encode(), "Ω".encode() * 100]:
        headers = {"X-Auth-Token": token}
        for response in [
            api.get("/profile", headers=headers),
            api.post("/profile/remove-mfa", {"auth_type": "PIN"}, headers=headers),
        ]:
            assert response.status_code == 401, response.text
            assert response.json()["code"] == 1
    garbage = [
        "Basic !!!not-base64!!!",
        "Basic " + "A" * 10_000,
        "Basic /w==",
        "Basic ",
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Bearer abc",
        "Basic",
        "Basic " + base64.b64encode(b"no colon here").decode(),
        basic("", "x"),
        "Basic " + base64.b64encode(b"admin@example.com").decode() + "==",
    ]
    for header in garbage:
        response = api.get("/session/login", headers={"Authorization": header})
        assert response.status_code == 401, (header[:40], response.text)
        assert response.json()["code"] == 1
    assert snapshot(world.api) == before


def test_emoji_names_are_accepted_and_kept(world: World) -> None:
    for i, name in enumerate(["Zoë 🚀", "山田 太郎", "👩\u200d👩\u200d👧", "Ñandú ÅÄÖ"]):
        body = {"name": name, "email": f"odd{i}@example.com"}
        created = world.api.post("/user/create", body, world.admin)
        assert created.status_code == 201, created.text
        shown = world.api.get(f"/user/metadata/{created.json()['id']}", world.admin)
        assert shown.json()["name"] == name


def test_control_characters_in_names_and_emails_are_refused(world: World) -> None:
    before = snapshot(world.api)
    call = Caller(world, ENDPOINTS["user_create"])
    for poison in [
        "a\nb",
        "a\rb",
        "tab\there",
        "\u001b[31mred",
        "nul\u0000",
        "\u007f",
        "c1\u0085",
        "csi\u009b",
    ]:
        refused(call.send({"name": poison, "email": "eve@example.com"}), field="name")
        refused(call.send({"name": "Eve", "email": f"eve{poison}@example.com"}), field="email")
    for email in ["not an email", "@example.com", "eve@", "eve@@example.com", "a" * 250 + "@x.io"]:
        refused(call.send({"name": "Eve", "email": email}), field="email")
    assert snapshot(world.api) == before


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("path", ["/nope", "/user/nope/deeper", "/session"])
def test_unknown_routes_are_404_error_model(api: Api, method: str, path: str) -> None:
    response = api.http.request(method, path, headers={"X-Auth-Token": str(uuid.uuid4())})
    assert response.status_code == 404, response.text
    assert response.json()["code"] == 4


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_a_path_climbing_out_of_the_api_finds_no_file(api: Api, method: str) -> None:
    # The client resolves the dots: /api/1.0/../../etc/passwd is /etc/passwd,
    # a page path, whose 404 is the pages' "not found" page.
    response = api.http.request(method, "/../../etc/passwd")
    assert response.url.path == "/etc/passwd"
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "root:" not in response.text


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/profile", "GET"),
        ("GET", "/user/create", "POST"),
        ("PUT", "/settings/set", "POST"),
        ("DELETE", "/session/login", "GET"),
        ("PATCH", "/user/edit", "POST"),
    ],
)
def test_wrong_method_is_405_error_model(
    admin_token: str, api: Api, method: str, path: str, allowed: str
) -> None:
    response = api.http.request(method, path, headers={"X-Auth-Token": admin_token})
    assert response.status_code == 405, response.text
    body = response.json()
    assert isinstance(body["code"], int) and isinstance(body["msg"], str)
    assert allowed in response.headers.get("Allow", "")
