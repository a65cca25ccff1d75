"""Attack: choosing one's own client address through ``X-Forwarded-For``.

Behind a proxy the client address is what the proxy forwards, and it decides
both the IP allow-list and the per-address throttle. A proxy that appends a
line of its own (HAProxy's ``option forwardfor``) leaves the client's own
``X-Forwarded-For`` line first: all the lines are one list, in order (RFC
9110 §5.3), and only its right end is ours. Fixed: the first line was read,
so a forged first line passed the allow-list (403 became 200) and gave every
failed login a fresh address budget (150 failures from one host, limit 100).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, basic, error
from tests.support.http import assert_throttled, audit_rows
from tests.support.scenario import WRONG_PASSWORD as WRONG

INSIDE = "10.0.0.5"
ATTACKER = "192.0.2.66"
PROXIES = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("172.16.0.0/12"))


def login(
    web: Api, lines: list[str], email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD
) -> Any:
    """A login whose request carries each of ``lines`` as its own X-Forwarded-For line."""
    headers = [("Authorization", basic(email, password))]
    headers += [("X-Forwarded-For", line) for line in lines]
    return web.http.get("/session/login", headers=headers)


def restrict_to_inside(web: Api) -> None:
    token = login(web, [INSIDE]).json()["session_id"]
    body = {"auth_methods": ["IP"], "ip_whitelist": ["10.0.0.0/24"]}
    response = web.post("/settings/set", body, token, headers={"X-Forwarded-For": INSIDE})
    assert response.status_code == 200, response.text


def test_a_forged_first_line_does_not_pass_the_allow_list(api: Api, make_api: Any) -> None:
    web: Api = make_api(trust_forwarded_for=True)
    restrict_to_inside(web)
    # The client sends "10.0.0.5"; the proxy adds its own line with what it saw.
    error(login(web, [INSIDE, ATTACKER]), 403, 20)
    assert login(web, [ATTACKER, INSIDE]).status_code == 200


def test_a_forged_first_line_gets_no_fresh_address_budget(api: Api, make_api: Any) -> None:
    web: Api = make_api(trust_forwarded_for=True, address_failure_threshold=10)
    for i in range(10):
        forged = f"203.0.113.{i}"
        error(login(web, [forged, ATTACKER], f"guess{i}@example.com", WRONG), 401, 1)
    assert audit_rows(api)[-1].client_addr == ATTACKER
    assert_throttled(login(web, ["203.0.113.99", ATTACKER], "fresh@example.com", WRONG), 30)


@pytest.mark.parametrize(
    ("lines", "client"),
    [
        # Our two proxies each wrote an entry; the client's own guess is left of them.
        (["10.0.0.5, 192.0.2.66, 172.16.0.3"], ATTACKER),
        (["10.0.0.5", "192.0.2.66", "172.16.0.3"], ATTACKER),
        (["10.0.0.5, 192.0.2.66", "172.16.0.3"], ATTACKER),
        # A request one of our proxies made itself.
        (["172.16.0.3"], "172.16.0.3"),
        ([], "127.0.0.1"),
    ],
)
def test_the_client_is_the_first_entry_from_the_right_that_is_not_our_proxy(
    api: Api, make_api: Any, lines: list[str], client: str
) -> None:
    web: Api = make_api(peer="127.0.0.1", trusted_proxies=PROXIES)
    error(login(web, lines, "nobody@example.com", WRONG), 401, 1)
    assert audit_rows(api)[-1].client_addr == client


def test_forwarded_for_from_a_peer_that_is_not_our_proxy_is_ignored(
    api: Api, make_api: Any
) -> None:
    web: Api = make_api(peer="198.51.100.20", trusted_proxies=PROXIES)
    error(login(web, [INSIDE, "172.16.0.3"], "nobody@example.com", WRONG), 401, 1)
    assert audit_rows(api)[-1].client_addr == "198.51.100.20"
