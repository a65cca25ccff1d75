"""The metrics listener of ``QUATRIX_MFA_METRICS_ADDR``: ``GET``/``HEAD
/metrics`` only, and with ``QUATRIX_MFA_METRICS_TOKEN`` set, only for its
bearer (the same 404 as an unknown path otherwise)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import REGISTRY

from quatrix_mfa import metrics_listener
from tests.servers import free_port
from tests.support.metrics import METRICS_TOKEN


@pytest.fixture
def listener() -> Iterator[str]:
    port = free_port()
    server = metrics_listener.start("127.0.0.1", port, REGISTRY, METRICS_TOKEN)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-of-the-same-length!!", "Basic " + METRICS_TOKEN, METRICS_TOKEN],
)
def test_with_a_token_the_listener_answers_only_its_bearer(
    listener: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    refused = httpx.get(f"{listener}/metrics", headers=headers, timeout=5)
    nowhere = httpx.get(f"{listener}/nowhere", headers=headers, timeout=5)
    assert refused.status_code == 404
    assert (refused.text, refused.headers["content-type"]) == (
        nowhere.text,
        nowhere.headers["content-type"],
    )
    assert "quatrix_mfa" not in refused.text
    assert httpx.post(f"{listener}/metrics", headers=headers, timeout=5).status_code == 404


def test_the_bearer_reads_the_metrics_and_nothing_else(listener: str) -> None:
    bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    scraped = httpx.get(f"{listener}/metrics", headers=bearer, timeout=5)
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert "quatrix_mfa_http_requests_total" in scraped.text
    assert httpx.get(f"{listener}/", headers=bearer, timeout=5).status_code == 404
    posted = httpx.post(f"{listener}/metrics", headers=bearer, timeout=5)
    assert posted.status_code == 405 and posted.headers["Allow"] == "GET, HEAD"
