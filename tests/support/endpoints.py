"""The endpoint catalog that bad-input attacks aim at: every POST with a body,
a valid body for it and the fields it declares, the world those bodies are
valid in (an admin, Bob with 2FA and a pending login, Carol with an unused
set-password link), and a :class:`Caller` that sends one endpoint raw bytes.

Shared by tests/api/test_bad_input.py (wrong types, missing fields, poison)
and tests/attacks/test_input_limits.py (lengths, sizes, depths); import the
``world`` and ``caller`` fixtures into a test module to use them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from quatrix_mfa.core.model import Step
from tests.support.database import snapshot
from tests.support.encoding import b64
from tests.support.scenario import ADMIN_PASSWORD

if TYPE_CHECKING:
    from tests.conftest import Api


JSON = {"Content-Type": "application/json"}
NEW_PASSWORD = "a brand new passphrase"


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
    scenario = api.scenario
    bob = scenario.user_with_totp(admin_token, "bob@example.com", "bob's good password")
    pending = scenario.pending(bob.email, bob.password, Step.TOTP)
    carol, reset_id = scenario.invite(admin_token, "carol@example.com")
    world = World(api, admin_token, bob.id, bob.secret, pending, carol, reset_id)
    world.tokens = {
        "admin": admin_token,
        "pending": world.pending,
        "none": None,
        "bob": bob.token,
    }
    return world


@dataclass(frozen=True)
class Endpoint:
    path: str  # "{reset}" is replaced by Carol's reset id
    token: str  # "admin", "pending", "bob" (a full session of Bob's) or "none"
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


def _start_recovery(w: World) -> None:
    """Bob's pending login starts a lost-device recovery for an admin to decide on."""
    response = w.api.post("/session/recover-mfa", None, w.pending)
    assert response.status_code == 202, response.text


USER = {"name": "Dave", "email": "dave@example.com", "super_admin": "N", "status": "A"}
MORE = {"language": "eng", "quota": 5, "custom_sftp_home": False, "groups": []}
SITE = {"title": "Site", "bcc": ["a@example.com"], "billing_emails": [], "email_footer": "Bye"}
SITE_MORE = {"language": "eng", "pgp_enabled": False, "share_types": {"public_share": True}}
ACCESS = {"auth_methods": [], "ip_whitelist": ["127.0.0.1"]}
PASSWORDS = {"password": b64(ADMIN_PASSWORD), "new_password": b64(NEW_PASSWORD)}
USER_SPEC = "name:str email:str super_admin:enum status:enum language:str"


def _trust_bob(w: World) -> None:
    """Bob signs in with "remember this device" (issue 13): a device to revoke."""
    w.api.clock.advance(30)  # a TOTP step no other login of his used
    bob = w.api.get("/user/metadata/" + w.bob, w.admin).json()["email"]
    pending = w.api.login(bob, "bob's good password").json()["session_id"]
    body = {"auth_type": "2FA", "code": w.api.code(w.bob_secret), "remember_device": True}
    response = w.api.post("/session/login", body, pending)
    assert response.status_code == 200 and response.headers["X-Device-Token"], response.text


def _bob_device(w: World) -> str:
    """The id of Bob's trusted device, if he has one (else an id of none)."""
    with w.api.core.store.transaction(write=False) as tx:
        found = tx.devices.of_user(w.bob)
    return found[0].id if found else "5b0d3d4e-8a55-4d8e-9a39-3f0a0f6c1b2a"


ENDPOINTS = {
    "session_login": Endpoint(
        "/session/login", "pending", "auth_type*:enum code*:str remember_device:bool",
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
    "recovery_codes": Endpoint(
        "/profile/recovery-codes", "bob", "code*:str",
        lambda w: {"code": w.api.code(w.bob_secret)},
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
    "user_recover_approve": Endpoint(
        "/user/recover-mfa/approve", "admin", "ids*:ids", lambda w: {"ids": [w.bob]},
        _start_recovery,
    ),
    "user_recover_cancel": Endpoint(
        "/user/recover-mfa/cancel", "admin", "ids*:ids", lambda w: {"ids": [w.bob]},
        _start_recovery,
    ),
    "settings_set": Endpoint(
        "/settings/set", "admin",
        "title:str bcc:list billing_emails:list email_footer:str language:str pgp_enabled:bool"
        " share_types:obj auth_methods:enumlist ip_whitelist:list mfa_grace_days:num"
        " mfa_self_recovery:bool trusted_device_days:num",
        lambda w: {**SITE, **SITE_MORE, **ACCESS},
    ),
    "profile_devices_delete": Endpoint(
        "/profile/devices/delete", "bob", "ids*:ids", lambda w: {"ids": [_bob_device(w)]},
        _trust_bob,
    ),
    "user_devices_delete": Endpoint(
        "/user/devices/delete", "admin", "ids*:ids", lambda w: {"ids": [w.bob]}
    ),
    "reset_request": Endpoint(
        "/reset-password/request", "none", "email*:list", lambda w: {"email": ["bob@example.com"]}
    ),
    "reset_reset": Endpoint(
        "/reset-password/reset/{reset}", "none", "password*:str",
        lambda w: {"password": NEW_PASSWORD},
    ),
}  # fmt: skip


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
