"""Fetch and cache an issuer's JWK Set (RFC 7517 §5) for token verification.

``_policy`` holds the I/O-free cache policy (freshness, cooldown, stale-if-error, discovery);
``_http`` the httpx plumbing both clients share; ``_sync`` and ``_async`` the two drivers,
hand-written twins as httpx's ``Client`` and ``AsyncClient`` are.
"""

from sealring.resource.jwks._async import AsyncJWKSClient
from sealring.resource.jwks._policy import JWKSSettings
from sealring.resource.jwks._sync import JWKSClient

__all__ = ["AsyncJWKSClient", "JWKSClient", "JWKSSettings"]
