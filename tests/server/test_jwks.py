"""The jwks_uri endpoint: conditional requests (RFC 9110 §13.1.2)."""

from __future__ import annotations

import httpx


def test_jwks_conditional_requests(http: httpx.Client) -> None:
    """RFC 9110 §13.1.2: If-None-Match uses weak comparison; ``*`` matches; lists are lists."""
    first = http.get("/jwks.json")
    assert first.headers["content-type"] in ("application/json", "application/jwk-set+json")
    etag = first.headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    for value in (etag, "W/" + etag, "*", f'"nope", {etag}', f'W/"x",W/{etag}'):
        response = http.get("/jwks.json", headers={"If-None-Match": value})
        assert response.status_code == 304, value
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert "max-age=" in response.headers["cache-control"]
    for value in ('"nope"', 'W/"nope"', etag[1:-1], etag[:-1], ", ,"):
        assert http.get("/jwks.json", headers={"If-None-Match": value}).status_code == 200, value
    assert http.head("/jwks.json").status_code == 200
