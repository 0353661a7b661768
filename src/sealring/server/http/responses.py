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
    """Render ``error`` as the JSON body of RFC 6749 §5.2 with its status and headers."""
    return json_response(error.body(), status=error.status_code, headers=error.headers())
