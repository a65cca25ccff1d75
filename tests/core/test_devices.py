"""core/devices.py without HTTP: the User-Agent label and which steps a
trusted device may stand in for."""

from __future__ import annotations

import pytest

from quatrix_mfa.core import devices
from quatrix_mfa.core.model import Step


@pytest.mark.parametrize(
    ("agent", "label"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Firefox on Linux",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) Version/17.6 Safari/605.1.15",
            "Safari on macOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
            "Safari on iOS",
        ),
        ("curl/8.5.0", "curl"),
        ("python-httpx/0.28", "Unknown device"),
        ("", "Unknown device"),
        (None, "Unknown device"),
        ("<script>alert(1)</script> Firefox/1", "Firefox"),
    ],
)
def test_the_label_names_browser_and_system_from_known_words_only(
    agent: str | None, label: str
) -> None:
    assert devices.label_for(agent) == label


@pytest.mark.parametrize(
    ("steps", "skipped"),
    [
        ((Step.TOTP,), True),
        ((Step.PIN,), True),
        ((Step.TOTP, Step.PIN), True),
        ((Step.ENROLL_TOTP,), False),
        ((Step.PIN, Step.ENROLL_TOTP), False),
        ((), False),
    ],
)
def test_trust_stands_in_for_proven_factors_never_for_an_enrollment(
    steps: tuple[Step, ...], skipped: bool
) -> None:
    assert devices.skips(steps) is skipped
