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
    web: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True)
    restrict_to_inside(web)
    # The client sends "10.0.0.5"; the proxy adds its own line with what it saw.
    error(login(web, [INSIDE, ATTACKER]), 403, 20)
    assert login(web, [ATTACKER, INSIDE]).status_code == 200


def test_a_forged_first_line_gets_no_fresh_address_budget(api: Api, make_api: Any) -> None:
    web: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True, address_failure_threshold=10)
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
        # Not an address: ignored, and left of it is nothing we can vouch for;
        # the client is the last hop read (the peer, if nothing else).
        (["garbage not an ip"], "127.0.0.1"),
        (["unknown"], "127.0.0.1"),
        (["10.0.0.5, garbage"], "127.0.0.1"),
        (["10.0.0.5, unknown, 172.16.0.3"], "172.16.0.3"),
        (["10.0.0.5", "proxy.example.com", "172.16.0.3"], "172.16.0.3"),
        (["192.0.2.66:4711, 172.16.0.3"], "172.16.0.3"),
        # Right of it, an address is the client as usual.
        (["garbage, 192.0.2.66"], ATTACKER),
        (["<script>, 192.0.2.66, , 172.16.0.3"], ATTACKER),
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


# The old on/off switch: a proxy on this host ------------------------------------


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.0.0.53", "::1", "::ffff:127.0.0.1"])
def test_the_old_switch_trusts_a_proxy_on_this_host(api: Api, make_api: Any, peer: str) -> None:
    web: Api = make_api(peer=peer, trust_forwarded_for=True)
    error(login(web, ["203.0.113.5"], "nobody@example.com", WRONG), 401, 1)
    assert audit_rows(api)[-1].client_addr == "203.0.113.5"


@pytest.mark.parametrize("peer", ["198.51.100.20", "10.0.0.1", "2001:db8::7"])
def test_the_old_switch_ignores_forwarded_for_from_any_other_peer(
    api: Api, make_api: Any, peer: str
) -> None:
    web: Api = make_api(peer=peer, trust_forwarded_for=True, address_failure_threshold=3)
    for i in range(3):
        forged = f"203.0.113.{i}"
        error(login(web, [forged], f"guess{i}@example.com", WRONG), 401, 1)
    assert audit_rows(api)[-1].client_addr == peer
    # Every forged address counted against the peer itself.
    assert_throttled(login(web, ["203.0.113.99"], "fresh@example.com", WRONG), 30)


def test_the_old_switch_skips_loopback_hops_like_configured_proxies(
    api: Api, make_api: Any
) -> None:
    web: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True)
    error(login(web, ["10.0.0.5, 192.0.2.66, 127.0.0.1"], "nobody@example.com", WRONG), 401, 1)
    assert audit_rows(api)[-1].client_addr == ATTACKER


def test_the_old_switch_and_the_list_together_trust_both(api: Api, make_api: Any) -> None:
    proxies = (ipaddress.ip_network("172.16.0.0/12"),)
    web: Api = make_api(peer="::1", trust_forwarded_for=True, trusted_proxies=proxies)
    error(login(web, ["10.0.0.5, 192.0.2.66, 172.16.0.3"], "nobody@example.com", WRONG), 401, 1)
    assert audit_rows(api)[-1].client_addr == ATTACKER
    remote: Api = make_api(peer="172.16.0.3", trust_forwarded_for=True, trusted_proxies=proxies)
    error(login(remote, ["192.0.2.67"], "nobody@example.com", WRONG), 401, 1)
    assert audit_rows(api)[-1].client_addr == "192.0.2.67"


# Entries that are no address (cases in the table above) ---------------------


def test_garbage_gets_no_address_budget_of_its_own(api: Api, make_api: Any) -> None:
    web: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True, address_failure_threshold=3)
    for i in range(3):
        error(login(web, [f"garbage {i}"], f"guess{i}@example.com", WRONG), 401, 1)
    assert_throttled(login(web, ["more garbage"], "fresh@example.com", WRONG), 30)
    assert {row.client_addr for row in audit_rows(api)[-4:]} == {"127.0.0.1"}


def test_forwarded_addresses_are_recorded_in_their_canonical_form(api: Api, make_api: Any) -> None:
    web: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True, address_failure_threshold=2)
    error(login(web, ["2001:DB8:0:0::1"], "nobody@example.com", WRONG), 401, 1)
    assert audit_rows(api)[-1].client_addr == "2001:db8::1"
    error(login(web, ["::ffff:192.0.2.66"], "guess1@example.com", WRONG), 401, 1)
    assert audit_rows(api)[-1].client_addr == ATTACKER
    error(login(web, ["192.0.2.66"], "guess2@example.com", WRONG), 401, 1)
    # One client, one budget, however it is written.
    assert_throttled(login(web, ["::FFFF:c000:242"], "fresh@example.com", WRONG), 30)


def test_an_ipv6_zone_is_dropped_not_recorded(api: Api, make_api: Any) -> None:
    # ipaddress accepts any text after '%': it must not become a client address.
    web: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True, address_failure_threshold=2)
    error(login(web, ["fe80::1%garbage not an ip"], "nobody@example.com", WRONG), 401, 1)
    assert audit_rows(api)[-1].client_addr == "fe80::1"
    error(login(web, ["fe80::1%eth0"], "guess1@example.com", WRONG), 401, 1)
    assert audit_rows(api)[-1].client_addr == "fe80::1"
    # One address, one budget, whatever zone it names.
    assert_throttled(login(web, ["fe80::1%other"], "fresh@example.com", WRONG), 30)
