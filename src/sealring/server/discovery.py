"""Authorization server metadata (RFC 8414).

Only what is actually supported is listed; ``issuer`` is exactly the configured issuer.  The
OpenID Connect path (``/.well-known/openid-configuration``) is not served: without an
authorization endpoint, ID tokens or subject types this server cannot publish a valid OpenID
Provider document (OIDC Discovery §3), and a client that finds one would assume OIDC features
that are not there.  Clients discover it the RFC 8414 way.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from sealring.server.client_auth import ASSERTION_ALGORITHMS
from sealring.server.settings import Settings
from sealring.server.state import state_of

__all__ = ["WELL_KNOWN_PATH", "discovery_endpoint", "metadata", "well_known_paths"]

WELL_KNOWN_PATH = "/.well-known/oauth-authorization-server"
CONFIDENTIAL_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


def metadata(settings: Settings) -> dict[str, object]:
    return {
        "issuer": settings.issuer,
        "token_endpoint": settings.token_endpoint,
        "jwks_uri": settings.jwks_uri,
        "introspection_endpoint": settings.introspection_endpoint,
        "revocation_endpoint": settings.revocation_endpoint,
        # RFC 8414 §2 requires the member; no authorization endpoint means no response types.
        "response_types_supported": [],
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": CONFIDENTIAL_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "revocation_endpoint_auth_methods_supported": [*CONFIDENTIAL_METHODS, "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "service_documentation": "https://github.com/sealring/sealring/blob/main/docs/server.md",
    }


def well_known_paths(issuer: str) -> list[str]:
    """RFC 8414 §3.1: for an issuer with a path, the well-known segment goes before it.

    The root path is served too: behind a proxy that strips the issuer's path it is where
    ``{issuer}/.well-known/oauth-authorization-server`` arrives.
    """
    path = urlsplit(issuer).path.rstrip("/")
    return [WELL_KNOWN_PATH, WELL_KNOWN_PATH + path] if path else [WELL_KNOWN_PATH]


async def discovery_endpoint(request: Request) -> Response:
    state = state_of(request)
    body = state.extra.get("discovery")
    if not isinstance(body, bytes):
        body = json.dumps(metadata(state.settings), separators=(",", ":")).encode()
        state.extra["discovery"] = body
    return Response(
        body, media_type="application/json", headers={"Cache-Control": "public, max-age=3600"}
    )
