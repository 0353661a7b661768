"""The ``jwks_uri`` endpoint: the key manager's JWK Set document (RFC 7517 §5).

The body and its strong ETag are computed by the keys layer once per change
(:class:`sealring.keys.JWKSDocument`, which also answers ``If-None-Match``); this endpoint only
adds ``Cache-Control: public, max-age=N`` and answers a match with 304.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sealring.server.http.endpoint import context_of

__all__ = ["jwks_endpoint"]


async def jwks_endpoint(request: Request) -> Response:
    doc = context_of(request).keys.jwks()
    headers = {"ETag": doc.etag, "Cache-Control": f"public, max-age={doc.max_age}"}
    if doc.matches(request.headers.get("if-none-match")):
        return Response(status_code=304, headers=headers)
    return Response(doc.body, headers=headers, media_type="application/json")
