"""The ``jwks_uri`` endpoint: the key manager's JWK Set document (RFC 7517 §5).

The body and its strong ETag are computed by the keys layer once per change; this endpoint only
adds ``Cache-Control: public, max-age=N`` and answers ``If-None-Match`` with 304.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sealring.server.state import state_of

__all__ = ["etag_matches", "jwks_endpoint"]


def etag_matches(etag: str, if_none_match: str | None) -> bool:
    """RFC 9110 §13.1.2: weak comparison; ``*`` matches any current representation."""
    if not if_none_match:
        return False
    opaque = etag.removeprefix("W/")
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == opaque:
            return True
    return False


async def jwks_endpoint(request: Request) -> Response:
    state = state_of(request)
    doc = state.keys.jwks()
    headers = {"ETag": doc.etag, "Cache-Control": f"public, max-age={doc.max_age}"}
    if etag_matches(doc.etag, request.headers.get("if-none-match")):
        return Response(status_code=304, headers=headers)
    return Response(doc.body, headers=headers, media_type="application/json")
