"""``json_response`` builds, for the default no-store headers, what Starlette's Response builds."""

from __future__ import annotations

import pytest
from starlette.responses import Response

from sealring.server.errors import NO_STORE_HEADERS
from sealring.server.http.responses import json_response


@pytest.mark.parametrize("status", [200, 201, 400, 401, 429, 500, 503, 204, 304])
@pytest.mark.parametrize("body", [b'{"access_token":"a.b.c"}', b"", {"error": "invalid_client"}])
def test_a_no_store_json_response_has_starlettes_headers_status_and_body(
    status: int, body: bytes | dict[str, str]
) -> None:
    content = body if isinstance(body, bytes) else b'{"error":"invalid_client"}'
    expected = Response(
        content, status_code=status, headers=dict(NO_STORE_HEADERS), media_type="application/json"
    )
    made = json_response(body, status=status)
    assert (made.status_code, made.raw_headers, bytes(made.body), made.background) == (
        expected.status_code,
        expected.raw_headers,
        bytes(expected.body),
        None,
    )
    assert (b"cache-control", b"no-store") in made.raw_headers


def test_other_headers_are_sent_as_given() -> None:
    made = json_response(b"{}", headers={"Cache-Control": "public, max-age=60"})
    assert made.raw_headers == [
        (b"cache-control", b"public, max-age=60"),
        (b"content-length", b"2"),
        (b"content-type", b"application/json"),
    ]
