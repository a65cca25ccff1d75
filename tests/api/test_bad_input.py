"""Bad input never gives a 500: always a 400 (or 413) ErrorModel, and the data
stays as it was (DESIGN.md, "Errors": "Never a 500 for bad input")."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from quatrix_mfa.storage.tables import metadata
from tests.conftest import ADMIN_PASSWORD, Api, basic, latest_link

# Rows that a refused request may legitimately add: the audit trail of the
# refusal and failure counters. Everything else must stay byte for byte.
VOLATILE_TABLES = {"audit_log", "throttle"}
JSON = {"Content-Type": "application/json"}
NEW_PASSWORD = "a brand new passphrase"


def snapshot(api: Api) -> dict[str, list[tuple[Any, ...]]]:
    engine = api.core.store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return {
            table.name: sorted((tuple(row) for row in conn.execute(select(table))), key=repr)
            for table in metadata.sorted_tables
            if table.name not in VOLATILE_TABLES
        }


@dataclass
class World:
    """An admin, Bob (password + 2FA, one pending login), Carol (unused set-password link)."""

    api: Api
    admin: str
    bob: str
    bob_secret: str
    pending: str
    carol: str
    reset_id: str
    tokens: dict[str, str | None] = field(default_factory=dict)


@pytest.fixture
def world(api: Api, admin_token: str) -> World:
    bob = api.create_user(admin_token, "bob@example.com", "bob's good password")
    _, secret, _ = api.enroll_totp(api.full_session("bob@example.com", "bob's good password"))
    login = api.login("bob@example.com", "bob's good password")
    assert login.status_code == 207, login.text
    created = api.post("/user/create", {"name": "Carol", "email": "carol@example.com"}, admin_token)
    assert created.status_code == 201, created.text
    reset_id = latest_link(api.core, "carol@example.com").rsplit("/", 1)[1]
    world = World(
        api, admin_token, bob, secret, login.json()["session_id"], created.json()["id"], reset_id
    )
    world.tokens = {"admin": admin_token, "pending": world.pending, "none": None}
    return world


@dataclass(frozen=True)
class Endpoint:
    path: str  # "{reset}" is replaced by Carol's reset id
    token: str  # "admin", "pending" or "none"
    spec: str  # "name:kind ...", kind in WRONG_TYPES; "name*" is required
    body: Callable[[World], dict[str, Any]]  # a valid body
    prepare: Callable[[World], None] = lambda w: None  # makes ``body`` succeed

    @property
    def fields(self) -> dict[str, str]:
        pairs = (item.split(":") for item in self.spec.split())
        return {name.rstrip("*"): kind for name, kind in pairs}

    @property
    def required(self) -> list[str]:
        return [item.split("*")[0] for item in self.spec.split() if "*" in item]


def _set_pin(w: World) -> None:
    response = w.api.post("/profile/set-mfa", {"auth_type": "PIN", "code": "2468"}, w.admin)
    assert response.status_code == 200, response.text
    w.admin = w.tokens["admin"] = response.json()["session_ids"]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


USER = {"name": "Dave", "email": "dave@example.com", "super_admin": "N", "status": "A"}
MORE = {"language": "eng", "quota": 5, "custom_sftp_home": False, "groups": []}
SITE = {"title": "Site", "bcc": ["a@example.com"], "billing_emails": [], "email_footer": "Bye"}
SITE_MORE = {"language": "eng", "pgp_enabled": False, "share_types": {"public_share": True}}
ACCESS = {"auth_methods": [], "ip_whitelist": ["127.0.0.1"]}
PASSWORDS = {"password": b64(ADMIN_PASSWORD), "new_password": b64(NEW_PASSWORD)}
USER_SPEC = "name:str email:str super_admin:enum status:enum language:str"

ENDPOINTS = {
    "session_login": Endpoint(
        "/session/login", "pending", "auth_type*:enum code*:str",
        lambda w: {"auth_type": "2FA", "code": w.api.code(w.bob_secret)},
    ),
    "set_password": Endpoint(
        "/profile/set-password", "admin", "password*:str new_password*:str", lambda w: PASSWORDS
    ),
    "profile_set_mfa": Endpoint(
        "/profile/set-mfa", "admin", "auth_type*:enum code*:str",
        lambda w: {"auth_type": "PIN", "code": "1357"},
    ),
    "profile_remove_mfa": Endpoint(
        "/profile/remove-mfa", "admin", "auth_type*:enum", lambda w: {"auth_type": "PIN"}, _set_pin
    ),
    "user_create": Endpoint(
        "/user/create", "admin",
        USER_SPEC.replace(":", "*:", 2)
        + " quota:num custom_sftp_home:bool groups:ids parent_id:str",
        lambda w: {**USER, **MORE, "parent_id": w.bob},
    ),
    "user_edit": Endpoint(
        "/user/edit", "admin", "ids*:ids " + USER_SPEC,
        lambda w: {**USER, "ids": [w.bob], "name": "Bobby", "email": "bobby@example.com"},
    ),
    "user_delete": Endpoint(
        "/user/delete", "admin", "ids*:ids delete_home:bool",
        lambda w: {"ids": [w.carol], "delete_home": False},
    ),
    "user_set_mfa": Endpoint(
        "/user/set-mfa", "admin", "ids*:ids auth_type*:enum code*:str",
        lambda w: {"ids": [w.bob], "auth_type": "PIN", "code": "97531"},
    ),
    "user_remove_mfa": Endpoint(
        "/user/remove-mfa", "admin", "ids*:ids auth_type*:enum",
        lambda w: {"ids": [w.bob], "auth_type": "2FA"},
    ),
    "user_reset_mfa": Endpoint(
        "/user/reset-mfa", "admin", "ids*:ids auth_type*:enum",
        lambda w: {"ids": [w.bob], "auth_type": "2FA"},
    ),
    "settings_set": Endpoint(
        "/settings/set", "admin",
        "title:str bcc:list billing_emails:list email_footer:str language:str pgp_enabled:bool"
        " share_types:obj auth_methods:enumlist ip_whitelist:list",
        lambda w: {**SITE, **SITE_MORE, **ACCESS},
    ),
    "reset_request": Endpoint(
        "/reset-password/request", "none", "email*:list", lambda w: {"email": ["bob@example.com"]}
    ),
    "reset_reset": Endpoint(
        "/reset-password/reset/{reset}", "none", "password*:str",
        lambda w: {"password": NEW_PASSWORD},
    ),
}  # fmt: skip
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


class Caller:
    """Sends raw requests to one endpoint and checks the answer."""

    def __init__(self, world: World, endpoint: Endpoint) -> None:
        self.world, self.endpoint = world, endpoint

    @property
    def path(self) -> str:
        return self.endpoint.path.replace("{reset}", self.world.reset_id)

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        token = self.world.tokens[self.endpoint.token]
        return {**({"X-Auth-Token": token} if token else {}), **(extra or {})}

    def raw(self, content: Any, headers: dict[str, str] | None = None) -> Any:
        return self.world.api.http.post(
            self.path, content=content, headers=self.headers(headers or JSON)
        )

    def send(self, body: Any) -> Any:
        # json.dumps writes "\ud800" as the JSON escape, as a hostile client would.
        return self.raw(json.dumps(body).encode())

    def valid(self, **changes: Any) -> dict[str, Any]:
        return {**self.endpoint.body(self.world), **changes}


def refused(response: Any, status: int = 400, field: str | None = None) -> None:
    assert response.status_code == status, (response.request.content[:200], response.text)
    body = response.json()
    assert body["code"] == 2, body
    assert isinstance(body["msg"], str) and body["msg"]
    if field is not None:
        keys = list((body.get("details") or {}).keys())
        assert any(k == field or k.startswith(field + ".") for k in keys), (field, body)


@pytest.fixture(params=list(ENDPOINTS))
def caller(request: pytest.FixtureRequest, world: World) -> Iterator[Caller]:
    before = snapshot(world.api)
    yield Caller(world, ENDPOINTS[request.param])
    assert snapshot(world.api) == before, "a refused request changed the data"


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
@pytest.mark.parametrize("path", ["/nope", "/user/nope/deeper", "/session", "/../../etc/passwd"])
def test_unknown_routes_are_404_error_model(api: Api, method: str, path: str) -> None:
    response = api.http.request(method, path, headers={"X-Auth-Token": str(uuid.uuid4())})
    assert response.status_code == 404, response.text
    assert response.json()["code"] == 4


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
