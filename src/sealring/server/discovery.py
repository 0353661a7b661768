"""Authorization server metadata (RFC 8414), also at the OpenID Connect discovery path.

Only what is actually supported is listed; ``issuer`` is exactly the configured issuer.  The same
document is served at ``/.well-known/openid-configuration`` because that is where API gateways and
resource-server libraries look for the ``jwks_uri`` (many know no other path).  It claims no
OpenID Provider feature this server lacks: no ``authorization_endpoint``, no ID-token members, so
a client that needs OIDC sees at once that it is not there (OIDC Discovery §3 members are added
when they become true).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from sealring.server.client_auth import ASSERTION_ALGORITHMS
from sealring.server.settings import Settings
from sealring.server.state import state_of

__all__ = [
    "OPENID_CONFIGURATION_PATH",
    "WELL_KNOWN_PATH",
    "discovery_endpoint",
    "metadata",
    "well_known_paths",
]

WELL_KNOWN_PATH = "/.well-known/oauth-authorization-server"
OPENID_CONFIGURATION_PATH = "/.well-known/openid-configuration"
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
    """Where the metadata is served, for an issuer with or without a path.

    RFC 8414 §3.1 puts the well-known segment before the issuer's path; OpenID Connect Discovery
    §4 appends it after the path, and some clients try the RFC 8414 form of the OpenID name too.
    The root paths are served as well: behind a proxy that strips the issuer's path they are where
    ``{issuer}/.well-known/...`` arrives.
    """
    path = urlsplit(issuer).path.rstrip("/")
    if not path:
        return [WELL_KNOWN_PATH, OPENID_CONFIGURATION_PATH]
    return [
        WELL_KNOWN_PATH,
        WELL_KNOWN_PATH + path,
        OPENID_CONFIGURATION_PATH,
        path + OPENID_CONFIGURATION_PATH,
        OPENID_CONFIGURATION_PATH + path,
    ]


async def discovery_endpoint(request: Request) -> Response:
    state = state_of(request)
    body = state.extra.get("discovery")
    if not isinstance(body, bytes):
        body = json.dumps(metadata(state.settings), separators=(",", ":")).encode()
        state.extra["discovery"] = body
    return Response(
        body, media_type="application/json", headers={"Cache-Control": "public, max-age=3600"}
    )
