"""The pages' languages: English, and any language with a catalog under
``locale/<lang>/LC_MESSAGES/messages.po``, chosen by ``Accept-Language``.

The ``.po`` files are read with Babel when a language is first asked for
(no build step, no compiled ``.mo`` in the repository) and kept for the
life of the process. ``scripts/i18n`` extracts the messages and updates them.
"""

from __future__ import annotations

import functools
import gettext
import io
from importlib import resources

from babel import negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DEFAULT = "en"
DOMAIN = "messages"


def N_(message: str) -> str:
    """Mark ``message`` for extraction where it is defined; it is translated
    where it is shown (with the request's :func:`translations`)."""
    return message


def _catalog_dir() -> resources.abc.Traversable:
    return resources.files("quatrix_mfa.web") / "locale"


@functools.cache
def available() -> tuple[str, ...]:
    """English (the messages themselves), then every language with a catalog."""
    found = sorted(
        entry.name
        for entry in _catalog_dir().iterdir()
        if (entry / "LC_MESSAGES" / f"{DOMAIN}.po").is_file()
    )
    return (DEFAULT, *found)


def negotiate(accept_language: str | None) -> str:
    """The best of :func:`available` for an ``Accept-Language`` header
    (``de-DE,de;q=0.9,en;q=0.8``); English when nothing matches."""
    return negotiate_locale(_preferred(accept_language or ""), available(), sep="-") or DEFAULT


def _preferred(header: str) -> list[str]:
    """The header's language tags, most wanted first; ``q=0`` means "not this"."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):  # a header is no list of all tags
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        tag = tag.strip()
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, index, tag))
    return [tag for _, _, tag in sorted(weighted)]


@functools.cache
def translations(locale: str) -> gettext.NullTranslations:
    """The messages of ``locale``, compiled in memory from its ``.po`` (fuzzy
    entries are left out, as ``msgfmt`` does: English is shown for them)."""
    if locale not in available() or locale == DEFAULT:
        return gettext.NullTranslations()
    po = _catalog_dir() / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    with po.open("rb") as source:
        catalog = read_po(source, locale=locale, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)
