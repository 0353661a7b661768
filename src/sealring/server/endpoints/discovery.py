"""Authorization server metadata (RFC 8414), also at the OpenID Connect discovery path.

Only what is actually supported is listed, derived from the route table and the grant registry;
``issuer`` is exactly the configured issuer.  The same document is served at
``/.well-known/openid-configuration`` because that is where API gateways and resource-server
libraries look for the ``jwks_uri`` (many know no other path).  It claims no OpenID Provider
feature this server lacks: no ``authorization_endpoint``, no ID-token members, so a client that
needs OIDC sees at once that it is not there (OIDC Discovery §3 members are added when they
become true).
"""

from __future__ import annotations

import functools
import json

from starlette.requests import Request
from starlette.responses import Response

from sealring.server.clients import AUTH_METHODS
from sealring.server.grants import GRANTS
from sealring.server.http.endpoint import context_of
from sealring.server.protocol.client_auth import ASSERTION_ALGORITHMS
from sealring.server.routes import advertised_urls
from sealring.server.settings import Settings

__all__ = ["discovery_endpoint", "metadata"]

CONFIDENTIAL_METHODS = [method for method in AUTH_METHODS if method != "none"]


def metadata(settings: Settings) -> dict[str, object]:
    algorithms = list(ASSERTION_ALGORITHMS)
    return {
        "issuer": settings.issuer,
        **advertised_urls(settings.issuer),
        # RFC 8414 §2 requires the member; no authorization endpoint means no response types.
        "response_types_supported": [],
        "grant_types_supported": list(GRANTS),
        "token_endpoint_auth_methods_supported": CONFIDENTIAL_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": algorithms,
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": algorithms,
        "revocation_endpoint_auth_methods_supported": [*CONFIDENTIAL_METHODS, "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": algorithms,
        "service_documentation": "https://github.com/sealring/sealring/blob/main/docs/server.md",
    }


@functools.lru_cache(maxsize=4)
def _response(settings: Settings) -> Response:
    """The answer for ``settings``, built once and sent as it is (never mutated)."""
    return Response(
        json.dumps(metadata(settings), separators=(",", ":")).encode(),
        media_type="application/json",
        headers={"Cache-Control": "public, max-age=3600"},
    )


async def discovery_endpoint(request: Request) -> Response:
    return _response(context_of(request).settings)
