"""The one place that builds Starlette responses from the server's framework-free values."""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.responses import Response

from sealring.server.errors import NO_STORE_HEADERS, OAuthError

__all__ = ["error_response", "json_response"]


def json_response(
    body: Mapping[str, object] | bytes,
    *,
    status: int = 200,
    headers: Mapping[str, str] = NO_STORE_HEADERS,
) -> Response:
    """A JSON response; not cacheable unless ``headers`` says otherwise (RFC 6749 §5.1)."""
    content = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
    if headers is NO_STORE_HEADERS and status in _PLAIN_STATUSES:
        return _NoStoreJSON(content, status)
    return Response(
        content, status_code=status, headers=dict(headers), media_type="application/json"
    )


# The statuses for which Starlette's Response sends a Content-Length (all but 1xx, 204, 304).
_PLAIN_STATUSES = frozenset(range(200, 600)) - {204, 304}
_NO_STORE_RAW = [
    (name.lower().encode(), value.encode()) for name, value in NO_STORE_HEADERS.items()
]


class _NoStoreJSON(Response):
    """``Response(body, status, NO_STORE_HEADERS, "application/json")``, the token endpoint's
    answer, with the header list Starlette would build (same names, values and order; a test
    compares them) assembled directly."""

    media_type = "application/json"

    def __init__(self, body: bytes, status: int) -> None:
        self.status_code = status
        self.background = None
        self.body = body
        self.raw_headers = [
            *_NO_STORE_RAW,
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
        ]


def error_response(error: OAuthError) -> Response:
    """Copy ``error``'s framework-free :class:`~sealring.errors.ErrorResponse` (RFC 6749 §5.2)."""
    answer = error.response()
    return Response(
        answer.body,
        status_code=answer.status,
        headers=dict(answer.headers),
        media_type=answer.media_type,
    )
