"""Schema fuzzing: schemathesis drives every operation of our own OpenAPI
document and of the upstream Swagger subset, in-process, with a real full
session (an admin) and a real pending session (an admin with 2FA, after the
password only).

Generated requests, valid and deliberately invalid, must never get a 5xx; the
response must match the document it was generated from (status code and body;
for the upstream spec, with the allowances of ``tests/spec.py``); every error
body must be the spec's ErrorModel; and data that breaks our document must be
refused. Clients build against these documents, so a response they do not
describe, or a crash on odd input, is a defect. Every example starts from the
same database snapshot, so destructive operations (logout, user deletion,
settings) stay in the run without spoiling the examples after them.

Beside the documents: the Basic ``Authorization`` header, which no schema
types, is fuzzed on its own (a NUL in the email gave a 500 on PostgreSQL),
and every body over the limit must get the 413 our document promises.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CheckContext, CheckFunction, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import delete, insert, select

from quatrix_mfa.api.limits import MAX_BODY
from quatrix_mfa.core.model import Step
from quatrix_mfa.storage.tables import metadata
from tests import spec
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, basic

# Per operation and generation mode; raise it (and set QUATRIX_MFA_FUZZ_RANDOM)
# for a deeper, non-reproducible hunt.
EXAMPLES = int(os.environ.get("QUATRIX_MFA_FUZZ_EXAMPLES", "16"))
DERANDOMIZE = os.environ.get("QUATRIX_MFA_FUZZ_RANDOM") is None
PENDING_MAY_CALL = (
    "/session/login",
    "/session/logout",
    "/profile/2fa/generate",
    "/profile/set-mfa",
)
PASSWORD = "an admin's good password"
Rows = list[tuple[Any, list[dict[str, Any]]]]


@dataclass
class World:
    """Two admins of one account: one with a full session, one (2FA) pending."""

    api: Api
    tokens: dict[str, str]
    user_ids: list[str]
    rows: Rows

    def restore(self) -> None:
        """Put every table back as it was when the world was made."""
        with self.api.core.store.engine.begin() as conn:  # type: ignore[attr-defined]
            for table in reversed(metadata.sorted_tables):
                conn.execute(delete(table))
            for table, rows in self.rows:
                if rows:
                    conn.execute(insert(table), rows)


@pytest.fixture
def world(api: Api, admin_token: str) -> World:
    scenario = api.scenario
    mfa_admin = scenario.user_with_totp(admin_token, "mfa@example.com", PASSWORD, super_admin=True)
    pending = scenario.pending(mfa_admin.email, PASSWORD, Step.TOTP)
    plain = scenario.create_user(admin_token, "plain@example.com", PASSWORD)
    admin = api.get("/profile", admin_token).json()["id"]
    with api.core.store.engine.connect() as conn:  # type: ignore[attr-defined]
        rows: Rows = [
            (table, [dict(row._mapping) for row in conn.execute(select(table))])
            for table in metadata.sorted_tables
        ]
    tokens = {"full": admin_token, "pending": pending}
    return World(api, tokens, [admin, mfa_admin.id, plain], rows)


@schemathesis.check
def error_body_is_error_model(ctx: CheckContext, response: Any, case: Any) -> bool | None:
    """Every 4xx and 5xx body is the spec's ErrorModel."""
    if response.status_code >= 400:
        _assert_error_model(response.status_code, response.json())
    return None


def _assert_error_model(status: int, body: Any) -> None:
    errors = list(spec.validator(spec.error_model()).iter_errors(body))
    assert not errors, f"{status} body is not an ErrorModel: {errors[0]}"


OURS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    error_body_is_error_model,
]
# Upstream status codes and bodies are checked by the test client's hook
# (tests/spec.py), which knows where DESIGN.md adds to the spec (207 on POST).
# Which data must be refused is our own document's business: it declares the
# null an optional upstream field may carry ("leave as is"), which Swagger 2.0
# cannot say, so upstream-generated "invalid" data is not held to a 4xx.
UPSTREAM: list[CheckFunction] = [
    not_a_server_error,
    content_type_conformance,
    error_body_is_error_model,
]


def _send(world: World, case: Any, base_url: str) -> httpx.Response:
    """Through the test client, whose hook checks the answer against tests/spec.py."""
    kwargs = case.as_transport_kwargs(base_url=base_url)
    headers = kwargs.get("headers", {})
    content = kwargs.get("data")
    response: httpx.Response = world.api.http.request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params"),
        headers=headers,
        json=kwargs.get("json"),
        content=content if isinstance(content, (bytes, str)) else None,
    )
    return response


def _use_real_ids(case: Any, ids: list[str]) -> None:
    """Point the case at users that exist, so deeper code runs."""
    if isinstance(case.body, dict) and isinstance(case.body.get("ids"), list):
        case.body["ids"] = ids
    if case.path_parameters and "id" in case.path_parameters:
        case.path_parameters["id"] = ids[0]


def _fuzz(
    schema: Any, world: World, session: str, base_url: str, checks: list[CheckFunction]
) -> None:
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [GenerationMode.POSITIVE]
        if operation.body:
            modes.append(GenerationMode.NEGATIVE)
        auth = {"X-Auth-Token": world.tokens[session]}
        # A pending session is refused (401 code 10) before its body is read,
        # except where it may go: fewer examples suffice there.
        reachable = session == "full" or operation.path.endswith(PENDING_MAY_CALL)
        examples = EXAMPLES if reachable else max(1, EXAMPLES // 4)
        for mode in modes:
            strategy = operation.as_strategy(mode, headers=auth)
            runner = _runner(world, base_url, checks, strategy, examples)
            try:
                runner()
            except (Exception, BaseExceptionGroup) as error:  # schemathesis' FailureGroup
                failures.append(f"{operation.label} ({mode.value}): {_describe(error)}")
    assert not failures, "\n\n".join(failures)


def _describe(error: BaseException) -> str:
    """The failure kinds and the request, without the megabyte bodies fuzzing sends."""
    parts = [str(error)[:700]]
    if isinstance(error, BaseExceptionGroup):
        parts += [f"  - {type(e).__name__}: {str(e)[:300]}" for e in error.exceptions]
    return "\n".join(parts)


def _runner(
    world: World, base_url: str, checks: list[CheckFunction], strategy: Any, examples: int
) -> Callable[[], None]:
    # Every health check is off: this @given runs inside a test, its function-
    # scoped world is restored per example, and schemathesis' strategies are
    # slow and filter by design.
    @settings(
        max_examples=examples,
        derandomize=DERANDOMIZE,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, real_ids=st.sampled_from([None, *world.user_ids]))
    def run(case: Any, real_ids: str | None) -> None:
        world.restore()
        if real_ids is not None and case.meta.generation.mode.is_positive:
            _use_real_ids(case, [real_ids])
        response = _send(world, case, base_url)
        case.validate_response(response, checks=checks)

    return run


# An over-long body (413) is refused as surely as a malformed one (400).
REFUSALS = ["400", "401", "403", "404", "405", "413", "415", "429"]
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}}
)


@pytest.fixture
def ours(api: Api) -> Any:
    return schemathesis.openapi.from_dict(api.get("/openapi.json").json(), config=CONFIG)


@pytest.fixture
def upstream() -> Any:
    return schemathesis.openapi.from_path(spec.SPEC_PATH, config=CONFIG)


@pytest.mark.parametrize("session", ["full", "pending"])
def test_our_openapi_holds_for_generated_requests(world: World, ours: Any, session: str) -> None:
    _fuzz(ours, world, session, "http://testserver", OURS)


@pytest.mark.parametrize("session", ["full", "pending"])
def test_upstream_spec_holds_for_generated_requests(
    world: World, upstream: Any, session: str
) -> None:
    _fuzz(upstream, world, session, "http://testserver" + spec.PREFIX, UPSTREAM)


# GET /session/login reads credentials from a header no schema types: fuzz it apart.
UTF8 = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
CREDENTIALS = st.one_of(
    st.tuples(UTF8, UTF8).map(lambda pair: basic(*pair)),
    st.binary(max_size=120).map(lambda raw: "Basic " + base64.b64encode(raw).decode()),
    st.text(st.characters(max_codepoint=0xFF, exclude_characters="\r\n"), max_size=80),
)


# The world is function-scoped on purpose: each example restores its snapshot.
@settings(
    max_examples=EXAMPLES * 2,
    derandomize=DERANDOMIZE,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(header=CREDENTIALS)
@example(header=basic("admin@example.com\x00", "x"))  # NUL reached PostgreSQL: 500
@example(header=basic("a\x00b@example.com", ADMIN_PASSWORD))
@example(header=basic(ADMIN_EMAIL, ADMIN_PASSWORD + "\x00"))
def test_generated_basic_credentials_get_a_session_or_a_401(world: World, header: str) -> None:
    world.restore()
    # Sent as bytes: a header is Latin-1 on the wire, httpx would encode a str as ASCII.
    response = world.api.get("/session/login", headers={"Authorization": header.encode("latin-1")})
    assert response.status_code in (200, 401, 429), response.text
    if response.status_code != 200:
        _assert_error_model(response.status_code, response.json())


def test_oversized_body_is_a_documented_413(world: World, ours: Any) -> None:
    """Every operation that takes a body documents the 413 it answers past 64 KiB."""
    checked = 0
    for result in ours.get_all_operations():
        operation = result.ok()
        if operation.method.upper() in ("GET", "HEAD", "OPTIONS") or not operation.body:
            continue  # takes no body (e.g. POST /confirm-email/{id})
        case = operation.Case(
            body={"name": "x" * (MAX_BODY + 1)},
            path_parameters={"id": world.user_ids[0]} if operation.path_parameters else None,
            headers={"X-Auth-Token": world.tokens["full"]},
        )
        response = _send(world, case, "http://testserver")
        assert response.status_code == 413, operation.label
        case.validate_response(
            response, checks=[status_code_conformance, response_schema_conformance]
        )
        checked += 1
    assert checked >= 13
