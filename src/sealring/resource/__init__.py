"""Sealring's resource-server toolkit: verify JWT access tokens (RFC 9068) in your API.

The public surface is small: a :class:`JWKSClient` (or :class:`AsyncJWKSClient`) keeps an issuer's
keys, an :class:`AccessTokenVerifier` checks tokens and returns :class:`AccessTokenClaims`, and
the errors map onto RFC 6750 responses. Framework adapters live in
``sealring.resource.integrations.{fastapi,starlette,flask}``. See ``docs/resource-server.md``.
"""

from sealring.resource.errors import (
    BearerError,
    DiscoveryError,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    JWKSError,
    JWKSFetchError,
    KeySetUnavailable,
    MissingToken,
)
from sealring.resource.jwks import AsyncJWKSClient, JWKSClient, JWKSSettings
from sealring.resource.verifier import AccessTokenClaims, AccessTokenVerifier, TrustedIssuer

__all__ = [
    "AccessTokenClaims",
    "AccessTokenVerifier",
    "AsyncJWKSClient",
    "BearerError",
    "DiscoveryError",
    "InsufficientScope",
    "InvalidRequest",
    "InvalidToken",
    "JWKSClient",
    "JWKSError",
    "JWKSFetchError",
    "JWKSSettings",
    "KeySetUnavailable",
    "MissingToken",
    "TrustedIssuer",
]
