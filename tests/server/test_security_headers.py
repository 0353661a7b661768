"""Response headers every answer carries (issue 10, item 12).

``X-Content-Type-Options: nosniff`` on every response, errors and the middleware's own answers
included, so that no browser reads a JSON error or a JWKS as HTML; and ``/metrics`` is never
stored by a cache between the scraper and the server.
"""

from __future__ import annotations

import httpx
import pytest

from tests.helpers.server import METRICS_TOKEN, LiveServer

REQUESTS = [
    ("GET", "/jwks.json", {}),
    ("GET", "/.well-known/oauth-authorization-server", {}),
    ("GET", "/healthz", {}),
    ("GET", "/readyz", {}),
    ("GET", "/openapi.json", {}),
    ("POST", "/token", {"data": {"grant_type": "client_credentials"}}),  # 401
    ("POST", "/introspect", {"data": {"token": "x"}}),  # 401
    ("POST", "/revoke", {"data": {"token": "x"}}),  # 401
    ("GET", "/token", {}),  # 405 from Starlette
    ("GET", "/nowhere", {}),  # 404 from Starlette
    ("GET", "/healthz", {"headers": {"X-Big": "x" * 20000}}),  # 431 from the middleware
]


@pytest.mark.parametrize(("method", "path", "kwargs"), REQUESTS, ids=[r[1] for r in REQUESTS])
def test_every_response_says_nosniff(
    http: httpx.Client, method: str, path: str, kwargs: dict[str, object]
) -> None:
    response = http.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert response.headers.get_list("x-content-type-options") == ["nosniff"], response.status_code


def test_a_successful_token_response_says_nosniff(live: LiveServer, http: httpx.Client) -> None:
    client = live.create_client(scope="read", audiences=["https://api.example.test"])
    response = http.post("/token", data={"grant_type": "client_credentials"}, auth=client)  # type: ignore[arg-type]
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"


def test_metrics_are_not_cacheable(http: httpx.Client) -> None:
    response = http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
