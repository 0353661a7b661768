"""The ``jwks_uri`` endpoint: the key manager's JWK Set document (RFC 7517 §5).

The body and its strong ETag are computed by the keys layer once per change
(:class:`sealring.keys.JWKSDocument`, which also answers ``If-None-Match``); this endpoint adds
``Cache-Control: public, max-age=N`` and answers a match with 304.  Both answers are built once
per document and reused for every request until the key set changes.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sealring.server.context import ServerContext
from sealring.server.http.endpoint import context_of
from sealring.server.tokens.access_token import JWKSLike

__all__ = ["jwks_answer", "jwks_endpoint"]


class _Answers:
    """The 200 and 304 responses for one document (sent as they are: never mutated)."""

    def __init__(self, doc: JWKSLike) -> None:
        self.doc = doc
        headers = {"ETag": doc.etag, "Cache-Control": f"public, max-age={doc.max_age}"}
        self.ok = Response(doc.body, headers=headers, media_type="application/json")
        self.not_modified = Response(status_code=304, headers=headers)


_current: _Answers | None = None


def _answers(doc: JWKSLike) -> _Answers:
    global _current
    answers = _current
    if answers is None or answers.doc is not doc:
        answers = _current = _Answers(doc)
    return answers


def jwks_answer(context: ServerContext) -> Response:
    """The 200 answer for the current document (a request without ``If-None-Match``)."""
    return _answers(context.keys.jwks()).ok


async def jwks_endpoint(request: Request) -> Response:
    doc = context_of(request).keys.jwks()
    answers = _answers(doc)
    if doc.matches(request.headers.get("if-none-match")):
        return answers.not_modified
    return answers.ok
