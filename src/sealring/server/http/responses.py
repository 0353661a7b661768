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
    content = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":"))
    return Response(
        content, status_code=status, headers=dict(headers), media_type="application/json"
    )


def error_response(error: OAuthError) -> Response:
    """Copy ``error``'s framework-free :class:`~sealring.errors.ErrorResponse` (RFC 6749 §5.2)."""
    answer = error.response()
    return Response(
        answer.body,
        status_code=answer.status,
        headers=dict(answer.headers),
        media_type=answer.media_type,
    )
