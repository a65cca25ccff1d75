"""The account's IP allow-list, in the spec's three formats.

``1.1.1.1`` (one address), ``1.1.1.0/24`` or ``1.1.1.0\\24`` (a network; the
spec writes the backslash form), and ``1.1.1.1-255`` (a range of the last
octet). IPv6 addresses and networks are accepted in the first two forms.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from quatrix_mfa.core.errors import ParameterError
from quatrix_mfa.core.model import Account

# ASCII digits only (``\d`` would take any Unicode digit), and no zero-padded
# end: ipaddress refuses "010" as an octet (octal to some readers), so do we.
_RANGE = re.compile(r"([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)([0-9]{1,3})-(0|[1-9][0-9]{0,2})")
MAX_ENTRIES = 1000

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class AddressRange:
    first: Address
    last: Address

    def __contains__(self, addr: Address) -> bool:
        return addr.version == self.first.version and self.first <= addr <= self.last  # type: ignore[operator]


Rule = Network | AddressRange


def parse_rule(text: str) -> Rule:
    """One allow-list entry; ValueError if it is none of the formats."""
    entry = text.strip()
    if len(entry) > 64:
        raise ValueError("entry too long")
    match = _RANGE.fullmatch(entry)
    if match:
        first = ipaddress.IPv4Address(match.group(1) + match.group(2))
        last_octet = int(match.group(3))
        if last_octet > 255 or last_octet < int(match.group(2)):
            raise ValueError("bad range")
        return AddressRange(first, ipaddress.IPv4Address(match.group(1) + str(last_octet)))
    if "%" in entry:  # an IPv6 zone id is free text ("fe80::1%<anything>") and local
        raise ValueError("zone ids are not allowed")
    return ipaddress.ip_network(entry.replace("\\", "/"), strict=False)


def normalize(entries: list[str]) -> list[str]:
    """Validate every entry; 400 naming the bad ones, else the cleaned list."""
    if len(entries) > MAX_ENTRIES:
        raise ParameterError.field("ip_whitelist", f"at most {MAX_ENTRIES} entries")
    bad: list[str] = []
    cleaned: list[str] = []
    for entry in entries:
        try:
            parse_rule(entry)
        except ValueError:
            bad.append(entry[:64])
        else:
            cleaned.append(entry.strip())
    if bad:
        raise ParameterError("Invalid ip_whitelist entries", {"ip_whitelist": bad})
    return cleaned


def admits(account: Account, client: str | None) -> bool:
    """The account's rule for every request: without an allow-list anyone,
    with one only the addresses it holds."""
    return not account.ip_restricted or allows(account.ip_whitelist, client)


def allows(entries: Sequence[str], client: str | None) -> bool:
    """True if ``client`` falls in any entry (an unparsable client never does).

    An entry stored before the rules tightened that no longer parses admits
    nobody, rather than failing every login of the account.
    """
    addr = client_address(client)
    if addr is None:
        return False
    for rule in _rules(tuple(entries)):
        if isinstance(rule, AddressRange):
            if addr in rule:
                return True
        elif addr.version == rule.version and addr in rule:
            return True
    return False


@functools.lru_cache(maxsize=256)
def _rules(entries: tuple[str, ...]) -> tuple[Rule, ...]:
    """The parsed entries that parse. Every request of a session in a
    restricted account asks, so an account's list is parsed once, not each time."""
    rules = []
    for entry in entries:
        try:
            rules.append(parse_rule(entry))
        except ValueError:
            continue
    return tuple(rules)


def client_address(client: str | None) -> Address | None:
    """A client address as one rule reads it everywhere (allow-list, throttle):
    an IPv4-mapped IPv6 address (``::ffff:1.2.3.4``, what a dual-stack socket
    reports) is the IPv4 address it maps; None if it is not an address. An
    IPv6 zone (``fe80::1%eth0``, RFC 4007 §11) is dropped: ``ipaddress``
    takes any text after the ``%``, which would put the client's own words
    into audit rows and throttle keys (and its ``exploded`` raises on them)."""
    if client is None:
        return None
    # Every request parses its peer's address two or three times (proxies,
    # allow-list): remembered. Only address-sized text, so a client's long
    # garbage cannot fill the memory.
    if len(client) <= _LONGEST_ADDRESS:
        return _remembered_address(client)
    return _parse_address(client)


# "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" and a short zone.
_LONGEST_ADDRESS = 64


def _parse_address(client: str) -> Address | None:
    try:
        addr = ipaddress.ip_address(client)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.scope_id is not None:
        addr = ipaddress.IPv6Address(int(addr))
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


_remembered_address = functools.lru_cache(maxsize=4096)(_parse_address)
