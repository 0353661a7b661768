"""Errors of the resource-server toolkit and their HTTP mapping (RFC 6750 §3).

Two families:

* :class:`BearerError` and its subclasses are what a protected endpoint answers: each knows its
  status code and its ``WWW-Authenticate`` challenge.
* :class:`JWKSError` and its subclasses are failures to obtain a key set. They are never the
  client's fault, so they are answered with 503 and no detail.

Both render their answer with ``response(realm)`` as the one framework-free
:class:`~sealring.errors.ErrorResponse` (the server's ``OAuthError.response()`` does the same);
the FastAPI, Starlette and Flask adapters only copy it onto their own response.

Every error has a stable ``.code`` (one per class, :data:`sealring.errors.ErrorCode`); callers
switch on it, never on the message.  A bearer error's wire value is ``.error``.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from types import MappingProxyType
from typing import ClassVar

from sealring.errors import ErrorCode, ErrorResponse, SealringError

__all__ = [
    "BearerError",
    "DiscoveryError",
    "InsufficientScope",
    "InvalidRequest",
    "InvalidToken",
    "IssuerMismatch",
    "JWKSBadStatus",
    "JWKSError",
    "JWKSFetchError",
    "JWKSInvalid",
    "JWKSRedirectRefused",
    "JWKSTooLarge",
    "KeySetUnavailable",
    "MissingToken",
]


def _json_body(body: dict[str, str]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


_UNAVAILABLE_HEADERS = MappingProxyType({"Retry-After": "30", "Cache-Control": "no-store"})
_UNAVAILABLE_BODY = _json_body(
    {
        "error": "temporarily_unavailable",
        "error_description": "the token cannot be verified right now",
    }
)


def _quoted(value: str) -> str:
    # RFC 6750 §3: error_description and scope values exclude '"' and '\'; never echo them.
    return '"' + "".join(c for c in value if c not in '"\\' and " " <= c <= "~") + '"'


class BearerError(SealringError):
    """A request refused at a protected endpoint; knows its RFC 6750 HTTP mapping."""

    code: ClassVar[ErrorCode] = "bearer_error"
    status_code: int = 401
    #: The RFC 6750 ``error`` parameter, or ``None`` when the challenge carries no error.
    error: str | None = None

    @property
    def description(self) -> str:
        return self.message

    def challenge(self, realm: str | None = None) -> str:
        """The ``WWW-Authenticate`` header value (RFC 6750 §3)."""
        params: list[str] = []
        if realm is not None:
            params.append(f"realm={_quoted(realm)}")
        if self.error is not None:
            params.append(f"error={_quoted(self.error)}")
            if self.description:
                params.append(f"error_description={_quoted(self.description)}")
        params.extend(self._extra_params())
        return "Bearer " + ", ".join(params) if params else "Bearer"

    def _extra_params(self) -> list[str]:
        return []

    def headers(self, realm: str | None = None) -> dict[str, str]:
        return {"WWW-Authenticate": self.challenge(realm), "Cache-Control": "no-store"}

    def body(self) -> dict[str, str]:
        """A JSON body for clients that do not read headers.

        With no error code (no credentials at all) the body carries only the description, so it
        never shows an ``error`` value that RFC 6750 §3.1 does not define.
        """
        if self.error is None:
            return {"error_description": self.description}
        return {"error": self.error, "error_description": self.description}

    def response(self, realm: str | None = None) -> ErrorResponse:
        """The answer to the refused request (RFC 6750 §3): status, challenge, JSON body."""
        return ErrorResponse(self.status_code, self.headers(realm), _json_body(self.body()))


class MissingToken(BearerError):
    """No bearer token at all: 401 with a bare challenge.

    RFC 6750 §3.1: when the request lacks any authentication information the resource server
    SHOULD NOT include an error code, so this one carries none.
    """

    code = "missing_token"
    status_code = 401
    error = None


class InvalidRequest(BearerError):
    """A malformed ``Authorization`` header, or a token sent by more than one method (400)."""

    code = "bearer_invalid_request"
    status_code = 400
    error = "invalid_request"


class InvalidToken(BearerError):
    """Expired, revoked, malformed or otherwise invalid token (401, RFC 6750 §3.1).

    ``.reason`` is the code of the underlying cause (``token_expired``, ``bad_signature``, ...),
    for logs and metrics; the message is safe to show.
    """

    code = "invalid_token"
    status_code = 401
    error = "invalid_token"

    def __init__(self, message: str, *, reason: str = "invalid_token") -> None:
        super().__init__(message)
        self.reason = reason


class InsufficientScope(BearerError):
    """A valid token without every scope the endpoint requires (403, RFC 6750 §3.1)."""

    code = "insufficient_scope"
    status_code = 403
    error = "insufficient_scope"

    def __init__(self, required: Collection[str], message: str | None = None) -> None:
        self.required = tuple(required)
        super().__init__(message or "the token lacks a required scope")

    def _extra_params(self) -> list[str]:
        return [f"scope={_quoted(' '.join(self.required))}"]


class JWKSError(SealringError):
    """The key set of an issuer could not be obtained."""

    code: ClassVar[ErrorCode] = "jwks_error"

    def response(self, realm: str | None = None) -> ErrorResponse:
        """503 without detail: the token may be fine, this server cannot tell right now.

        ``realm`` is accepted for symmetry with :meth:`BearerError.response` and not used: a 503
        carries no ``WWW-Authenticate`` challenge.
        """
        return ErrorResponse(503, _UNAVAILABLE_HEADERS, _UNAVAILABLE_BODY)


class JWKSFetchError(JWKSError):
    """A fetch failed: transport error, timeout or an undecodable body; the subclasses below
    name the other causes (bad status, redirect, oversize, refused document)."""

    code: ClassVar[ErrorCode] = "jwks_fetch_failed"


class JWKSBadStatus(JWKSFetchError):
    """The server answered with a status other than 200."""

    code = "jwks_bad_status"


class JWKSRedirectRefused(JWKSFetchError):
    """The server answered with a redirect, which is never followed."""

    code = "jwks_redirect_refused"


class JWKSTooLarge(JWKSFetchError):
    """The body exceeds the size cap (decoded size, so compression cannot hide it)."""

    code = "jwks_too_large"


class JWKSInvalid(JWKSFetchError):
    """The body is not a JWK Set this toolkit accepts (RFC 7517 §5)."""

    code = "jwks_invalid"


class DiscoveryError(JWKSError):
    """Authorization-server metadata (RFC 8414) could not be used, or names another issuer."""

    code: ClassVar[ErrorCode] = "discovery_failed"


class IssuerMismatch(DiscoveryError):
    """RFC 8414 §3.3: the metadata's ``issuer`` is not the configured issuer."""

    code = "issuer_mismatch"


class KeySetUnavailable(JWKSError):
    """No usable key set: the last good one is older than the stale-if-error window.

    The verifier fails closed rather than accept tokens against keys it cannot refresh.
    """

    code = "jwks_unavailable"
