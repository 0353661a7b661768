"""OAuth 2.0 and OpenID Connect protocol errors, and the HTTP mapping each one owns.

Every protocol error the server raises is an :class:`OAuthError`.  Each class has

* ``code``: its unique Sealring code (:data:`sealring.errors.ErrorCode`), for callers and logs;
* ``error``: the RFC wire value of the ``error`` member (RFC 6749 §5.2, §4.1.2.1; RFC 7009
  §2.2.1; RFC 8707 §2; OIDC Core §3.1.2.6), which several classes may share;
* ``status``: the HTTP status of a direct (non-redirect) answer;
* ``expose``: whether the description may be shown to the client (never for a 500);
* ``redirectable``: whether the authorization endpoint may send it to the client's redirect URI
  (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6) once that URI is validated; the others are shown on a
  page or answered directly, never redirected.

:meth:`OAuthError.response` renders the answer without a framework
(:class:`~sealring.errors.ErrorResponse`); ``server.http.responses`` only copies it.  The
description is meant for the client developer and never contains a secret, a token or key
material.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import ClassVar

from sealring.errors import ErrorCode, ErrorResponse, OAuthErrorName, SealringError

__all__ = [
    "NO_STORE_HEADERS",
    "AccessDenied",
    "AccountSelectionRequired",
    "ConsentRequired",
    "InteractionRequired",
    "InvalidClient",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidRequestObject",
    "InvalidScope",
    "InvalidTarget",
    "LoginRequired",
    "OAuthError",
    "OAuthErrorName",
    "RateLimited",
    "RegistrationNotSupported",
    "RequestNotSupported",
    "RequestTooLarge",
    "RequestUriNotSupported",
    "ServerError",
    "TemporarilyUnavailable",
    "UnauthorizedClient",
    "UnsupportedGrantType",
    "UnsupportedMediaType",
    "UnsupportedResponseType",
    "UnsupportedTokenType",
]

# RFC 6749 §5.1/§5.2: token responses and their errors must not be cached.
NO_STORE_HEADERS: Mapping[str, str] = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(SealringError):
    """A protocol error; subclasses fix ``code``, ``error``, ``status`` and the two flags."""

    code: ClassVar[ErrorCode] = "oauth_error"
    error: ClassVar[OAuthErrorName] = "invalid_request"
    status: ClassVar[int] = 400
    expose: ClassVar[bool] = True
    redirectable: ClassVar[bool] = False

    @property
    def description(self) -> str:
        return self.message

    @property
    def status_code(self) -> int:
        return self.status

    def headers(self) -> dict[str, str]:
        return dict(NO_STORE_HEADERS)

    def body(self) -> dict[str, str]:
        out: dict[str, str] = {"error": self.error}
        if self.expose and self.description:
            out["error_description"] = self.description
        return out

    def response(self) -> ErrorResponse:
        """The direct answer: RFC 6749 §5.2 JSON with this error's status and headers."""
        return ErrorResponse(
            status=self.status,
            headers=self.headers(),
            body=json.dumps(self.body(), separators=(",", ":")).encode(),
        )


# -- RFC 6749 §5.2 (token endpoint) and §4.1.2.1 (authorization endpoint) ---------------------


class InvalidRequest(OAuthError):
    """Missing, repeated or malformed parameter, or more than one authentication method."""

    code: ClassVar[ErrorCode] = "invalid_request"
    error = "invalid_request"
    redirectable = True


class RequestTooLarge(InvalidRequest):
    """The request body exceeds the configured cap (413, still an ``invalid_request``)."""

    code = "request_too_large"
    status = 413


class UnsupportedMediaType(InvalidRequest):
    """The body is not ``application/x-www-form-urlencoded`` in UTF-8.

    RFC 6749 §3.2 fixes the media type and §5.2 answers a malformed request with 400
    ``invalid_request``; OAuth clients read that JSON error, so it is 400 and not HTTP's 415.
    """

    code = "unsupported_media_type"


class InvalidClient(OAuthError):
    """Client authentication failed (RFC 6749 §5.2): 401 with a ``WWW-Authenticate`` challenge.

    Never redirected: until the client is known, its redirect URI is not to be trusted.
    """

    code = "invalid_client"
    error = "invalid_client"
    status = 401

    def __init__(self, description: str = "client authentication failed") -> None:
        super().__init__(description)

    def headers(self) -> dict[str, str]:
        headers = super().headers()
        # §5.2: when the client tried HTTP Basic the challenge must name that scheme; we always
        # send it so that a library retrying with Basic knows it is accepted.
        headers["WWW-Authenticate"] = 'Basic realm="sealring", charset="UTF-8"'
        return headers


class InvalidGrant(OAuthError):
    """The grant (code, refresh token, ...) is invalid, expired, revoked or not this client's."""

    code = "invalid_grant"
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    """The authenticated client may not use this grant type (or revoke this token)."""

    code = "unauthorized_client"
    error = "unauthorized_client"
    redirectable = True


class UnsupportedGrantType(OAuthError):
    code = "unsupported_grant_type"
    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    code = "invalid_scope"
    error = "invalid_scope"
    redirectable = True


class AccessDenied(OAuthError):
    """RFC 6749 §4.1.2.1: the resource owner or the server denied the request."""

    code = "access_denied"
    error = "access_denied"
    status = 403
    redirectable = True


class UnsupportedResponseType(OAuthError):
    """RFC 6749 §4.1.2.1: the server does not issue codes (or tokens) by this response type."""

    code = "unsupported_response_type"
    error = "unsupported_response_type"
    redirectable = True


class ServerError(OAuthError):
    """Anything unexpected: a fixed opaque body, never internals."""

    code = "server_error"
    error = "server_error"
    status = 500
    expose = False
    redirectable = True


class TemporarilyUnavailable(OAuthError):
    """A dependency (database, signing key, Redis) is down: 503 with ``Retry-After``.

    RFC 9110 §10.2.3: the client may retry after that many seconds; outages the server rides
    out (docs/reliability.md) are over within seconds, so the default is 1.
    """

    code: ClassVar[ErrorCode] = "temporarily_unavailable"
    error = "temporarily_unavailable"
    status = 503
    redirectable = True
    retry_after = 1

    def headers(self) -> dict[str, str]:
        headers = super().headers()
        headers["Retry-After"] = str(self.retry_after)
        return headers


class RateLimited(TemporarilyUnavailable):
    """The client's token bucket is empty: 429 with ``Retry-After`` in whole seconds."""

    code = "rate_limited"
    status = 429

    def __init__(self, retry_after: float) -> None:
        super().__init__("rate limit exceeded, retry later")
        self.retry_after = max(1, int(retry_after + 0.999))


# -- RFC 8707 §2, RFC 7009 §2.2.1 --------------------------------------------------------------


class InvalidTarget(OAuthError):
    """RFC 8707 §2: the requested resource is not one the client may get a token for."""

    code = "invalid_target"
    error = "invalid_target"
    redirectable = True


class UnsupportedTokenType(OAuthError):
    """RFC 7009 §2.2.1."""

    code = "unsupported_token_type"
    error = "unsupported_token_type"


# -- OpenID Connect Core §3.1.2.6 (authorization endpoint) --------------------------------------


class InteractionRequired(OAuthError):
    """``prompt=none``, but the user must interact with the server to go on."""

    code = "interaction_required"
    error = "interaction_required"
    redirectable = True


class LoginRequired(OAuthError):
    """``prompt=none``, but the user is not signed in."""

    code = "login_required"
    error = "login_required"
    redirectable = True


class AccountSelectionRequired(OAuthError):
    """``prompt=none``, but the user must choose among several sessions."""

    code = "account_selection_required"
    error = "account_selection_required"
    redirectable = True


class ConsentRequired(OAuthError):
    """``prompt=none``, but the user has not consented to this client and scope."""

    code = "consent_required"
    error = "consent_required"
    redirectable = True


class RequestNotSupported(OAuthError):
    """The ``request`` parameter (a request object) is not supported."""

    code = "request_not_supported"
    error = "request_not_supported"
    redirectable = True


class RequestUriNotSupported(OAuthError):
    """The ``request_uri`` parameter is not supported."""

    code = "request_uri_not_supported"
    error = "request_uri_not_supported"
    redirectable = True


class RegistrationNotSupported(OAuthError):
    """The ``registration`` parameter is not supported."""

    code = "registration_not_supported"
    error = "registration_not_supported"
    redirectable = True


class InvalidRequestObject(OAuthError):
    """The request object is invalid."""

    code = "invalid_request_object"
    error = "invalid_request_object"
    redirectable = True
