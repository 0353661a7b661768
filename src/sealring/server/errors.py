"""OAuth 2.0 error responses (RFC 6749 §5.2) and the HTTP mapping each error owns.

Every protocol error raised by the server is an :class:`OAuthError`; its ``code`` is the RFC error
code and the class decides the status and headers.  The description is meant for the client
developer and never contains a secret, a token or key material.
"""

from __future__ import annotations

from collections.abc import Mapping

from sealring.errors import SealringError

__all__ = [
    "NO_STORE_HEADERS",
    "InvalidClient",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidScope",
    "InvalidTarget",
    "OAuthError",
    "RateLimited",
    "RequestTooLarge",
    "ServerError",
    "TemporarilyUnavailable",
    "UnauthorizedClient",
    "UnsupportedGrantType",
    "UnsupportedMediaType",
    "UnsupportedTokenType",
]

# RFC 6749 §5.1/§5.2: token responses and their errors must not be cached.
NO_STORE_HEADERS: Mapping[str, str] = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(SealringError):
    """An RFC 6749 §5.2 error.  ``code`` is the ``error`` member of the response."""

    code = "invalid_request"
    status_code = 400

    def __init__(self, description: str = "", *, code: str | None = None) -> None:
        super().__init__(description, code=code)

    @property
    def description(self) -> str:
        return self.message

    def headers(self) -> dict[str, str]:
        return dict(NO_STORE_HEADERS)

    def body(self) -> dict[str, str]:
        out = {"error": self.code}
        if self.description:
            out["error_description"] = self.description
        return out


class InvalidRequest(OAuthError):
    """Missing, repeated or malformed parameter, or more than one authentication method."""

    code = "invalid_request"


class RequestTooLarge(InvalidRequest):
    """The request body exceeds the configured cap (413, still an ``invalid_request``)."""

    status_code = 413


class UnsupportedMediaType(InvalidRequest):
    """The body is not ``application/x-www-form-urlencoded`` in UTF-8.

    RFC 6749 §3.2 fixes the media type and §5.2 answers a malformed request with 400
    ``invalid_request``; OAuth clients read that JSON error, so it is 400 and not HTTP's 415.
    """


class InvalidClient(OAuthError):
    """Client authentication failed (RFC 6749 §5.2): 401 with a ``WWW-Authenticate`` challenge."""

    code = "invalid_client"
    status_code = 401

    def __init__(self, description: str = "client authentication failed", *, basic: bool = True):
        super().__init__(description)
        self.basic = basic

    def headers(self) -> dict[str, str]:
        headers = super().headers()
        # §5.2: when the client tried HTTP Basic the challenge must name that scheme; we always
        # send it so that a library retrying with Basic knows it is accepted.
        headers["WWW-Authenticate"] = 'Basic realm="sealring", charset="UTF-8"'
        return headers


class InvalidGrant(OAuthError):
    code = "invalid_grant"


class UnauthorizedClient(OAuthError):
    """The authenticated client may not use this grant type (or revoke this token)."""

    code = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    code = "unsupported_grant_type"


class InvalidScope(OAuthError):
    code = "invalid_scope"


class InvalidTarget(OAuthError):
    """RFC 8707 §2: the requested resource is not one the client may get a token for."""

    code = "invalid_target"


class UnsupportedTokenType(OAuthError):
    """RFC 7009 §2.2.1."""

    code = "unsupported_token_type"


class TemporarilyUnavailable(OAuthError):
    """A dependency (database, signing key, Redis) is down: 503 with ``Retry-After``.

    RFC 9110 §10.2.3: the client may retry after that many seconds; outages the server rides
    out (docs/reliability.md) are over within seconds, so the default is 1.
    """

    code = "temporarily_unavailable"
    status_code = 503
    retry_after = 1

    def headers(self) -> dict[str, str]:
        headers = super().headers()
        headers["Retry-After"] = str(self.retry_after)
        return headers


class RateLimited(TemporarilyUnavailable):
    """The client's token bucket is empty: 429 with ``Retry-After`` in whole seconds."""

    status_code = 429

    def __init__(self, retry_after: float) -> None:
        super().__init__("rate limit exceeded, retry later")
        self.retry_after = max(1, int(retry_after + 0.999))


class ServerError(OAuthError):
    """Anything unexpected: a fixed opaque body, never internals."""

    code = "server_error"
    status_code = 500


# Authorization endpoint errors (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6, RFC 9101 §6.1).  Minimal
# classes for the login building blocks; whether one is shown on a page or redirected to the
# client is decided by the authorization request validator, not by the class.


class AccessDenied(OAuthError):
    """RFC 6749 §4.1.2.1: the resource owner or the server denied the request."""

    code = "access_denied"
    status_code = 403


class UnsupportedResponseType(OAuthError):
    """RFC 6749 §4.1.2.1: only ``response_type=code`` is served."""

    code = "unsupported_response_type"


class InteractionRequired(OAuthError):
    """OIDC Core §3.1.2.6: ``prompt=none`` but the user would have to interact."""

    code = "interaction_required"


class LoginRequired(OAuthError):
    """OIDC Core §3.1.2.6: ``prompt=none`` but the user is not signed in."""

    code = "login_required"


class AccountSelectionRequired(OAuthError):
    """OIDC Core §3.1.2.6: ``prompt=none`` but the user would have to choose an account."""

    code = "account_selection_required"


class ConsentRequired(OAuthError):
    """OIDC Core §3.1.2.6: ``prompt=none`` but the user has not consented."""

    code = "consent_required"


class RequestNotSupported(OAuthError):
    """OIDC Core §3.1.2.6: the ``request`` parameter (a request object) is not supported."""

    code = "request_not_supported"


class RequestUriNotSupported(OAuthError):
    """OIDC Core §3.1.2.6: the ``request_uri`` parameter is not supported."""

    code = "request_uri_not_supported"


class InvalidRequestObject(OAuthError):
    """OIDC Core §3.1.2.6 / RFC 9101 §6.1: the request object is invalid."""

    code = "invalid_request_object"


__all__ += [
    "AccessDenied",
    "AccountSelectionRequired",
    "ConsentRequired",
    "InteractionRequired",
    "InvalidRequestObject",
    "LoginRequired",
    "RequestNotSupported",
    "RequestUriNotSupported",
    "UnsupportedResponseType",
]
