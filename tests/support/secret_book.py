"""Every secret a test run used, and the search of log lines for them
(issue 15, item 2: the whole-run secrets grep; tests/support/secrets_grep.py
runs it).

A secret is found in a line where it stands as a whole: the characters just
before and after it are not ASCII letters or digits (or it starts or ends
with one that is not). Log lines write values as fields, quoted or after
``=`` or a space, so a leaked value stands alone; a value glued to other
letters is not searched for, which keeps short secrets from matching inside
longer words. A secret made of digits only (a TOTP code, a PIN) must also not
be part of a decimal or a time: ``12.483920`` (a duration) or ``10:483920``
do not count, while ``"483920"``, ``code=483920`` and ``code 483920.`` do.

What is not searched for at all, since it would match by accident without
saying anything: values shorter than :data:`SHORTEST` characters, and single
lower-case words shorter than :data:`SHORTEST_WORD` (a test sends
``password`` or ``request`` as a wrong password or a made-up link id; the
logs are full of such words: ``login.password``, ``quatrix_mfa.request``),
and email addresses (a test sends the user's email as a password to see it
refused; the logs may name a user by email: ``user unlock`` does).

Each secret is looked for in the spellings a log line could show it in: as
it is, JSON-escaped (a quote, a backslash, non-ASCII), URL-encoded, and a
UUID also without its dashes. The search is one pass over a line's words
with a dictionary lookup each, whatever the number of secrets: each spelling
is filed under its longest word, and only the spellings filed under a word of
the line are compared with it.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

SHORTEST = 6
SHORTEST_WORD = 12
_WORD = re.compile(r"[A-Za-z0-9]+")
_LOWER_WORD = re.compile(r"[a-z]+")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_DIGITS = frozenset("0123456789")


@dataclass(frozen=True)
class Secret:
    """A value that must never be logged: what it is, and the test that used it first."""

    kind: str
    origin: str


@dataclass(frozen=True)
class Hit:
    """A secret found in a line: the spelling that matched and where."""

    secret: Secret
    spelling: str
    start: int


def worth_searching(value: str) -> bool:
    """Whether finding ``value`` in a line would say that it leaked (module docstring)."""
    if len(value) < SHORTEST or not _WORD.search(value):
        return False
    if _EMAIL.fullmatch(value):
        return False
    return not (_LOWER_WORD.fullmatch(value) and len(value) < SHORTEST_WORD)


def spellings(value: str) -> set[str]:
    """``value`` as a log line could show it: raw, JSON-escaped, URL-encoded,
    and a UUID also as 32 hex digits."""
    url_encoded = quote(value.encode("utf-8", "surrogatepass"), safe="")
    found = {value, json.dumps(value)[1:-1], url_encoded}
    with contextlib.suppress(ValueError):
        found.add(uuid.UUID(value).hex)
    return found


class SecretBook:
    """The secrets of a run, by spelling; the first use of a value names it."""

    def __init__(self) -> None:
        self._by_spelling: dict[str, Secret] = {}
        self._kinds: dict[str, int] = {}
        self._index: dict[str, list[tuple[str, int]]] | None = None

    def add(self, kind: str, value: str, origin: str) -> None:
        """Keep ``value`` (a ``kind``: password, session token, ...) if worth searching for."""
        if not worth_searching(value) or value in self._by_spelling:
            return
        self._kinds[kind] = self._kinds.get(kind, 0) + 1
        secret = Secret(kind, origin)
        for spelling in spellings(value):
            self._by_spelling.setdefault(spelling, secret)
        self._index = None

    def __len__(self) -> int:
        """The number of distinct secrets (not spellings) kept."""
        return sum(self._kinds.values())

    def kinds(self) -> dict[str, int]:
        """How many secrets of each kind were kept (for the run's summary)."""
        return dict(sorted(self._kinds.items()))

    def _built_index(self) -> dict[str, list[tuple[str, int]]]:
        """Each spelling filed under its longest word, with that word's offset in it."""
        if self._index is None:
            index: dict[str, list[tuple[str, int]]] = {}
            for spelling in self._by_spelling:
                longest = max(_WORD.finditer(spelling), key=lambda m: len(m.group()))
                index.setdefault(longest.group(), []).append((spelling, longest.start()))
            self._index = index
        return self._index

    def search(self, line: str) -> Iterator[Hit]:
        """The secrets standing as a whole in ``line`` (module docstring)."""
        index = self._built_index()
        if index.keys().isdisjoint(_WORD.findall(line)):  # the usual case, found in C
            return
        for word in _WORD.finditer(line):
            for spelling, offset in index.get(word.group(), ()):
                start = word.start() - offset
                end = start + len(spelling)
                if (
                    start >= 0
                    and line.startswith(spelling, start)
                    and _stands_alone(line, start, end, spelling)
                ):
                    yield Hit(self._by_spelling[spelling], spelling, start)


def _stands_alone(line: str, start: int, end: int, spelling: str) -> bool:
    """No letter or digit glued to either end; digits only: not in a decimal or a time."""
    before = line[start - 1] if start > 0 else ""
    after = line[end] if end < len(line) else ""
    if (before in _ALNUM and spelling[0] in _ALNUM) or (after in _ALNUM and spelling[-1] in _ALNUM):
        return False
    if spelling.isdigit():
        if before in (".", ":") and start > 1 and line[start - 2] in _DIGITS:
            return False
        if after in (".", ":") and end + 1 < len(line) and line[end + 1] in _DIGITS:
            return False
    return True


def masked(line: str, hits: list[Hit], width: int = 400) -> str:
    """``line`` with each secret found in it replaced by ``<kind>``, cut to
    about ``width`` characters around the first."""
    shown, first = line, len(line)
    for hit in sorted(hits, key=lambda h: h.start, reverse=True):
        end = hit.start + len(hit.spelling)
        if end > first:  # overlaps a secret already masked: mask the union
            end = first
        shown = f"{shown[: hit.start]}<{hit.secret.kind}>{shown[end:]}"
        first = hit.start
    if len(shown) <= width:
        return shown
    begin = max(0, first - width // 2)
    return ("…" if begin else "") + shown[begin : begin + width] + "…"
