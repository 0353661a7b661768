"""Authorization server metadata (RFC 8414) and OpenID Provider metadata (OIDC Discovery §3).

One document, served at ``/.well-known/oauth-authorization-server`` and
``/.well-known/openid-configuration``.  Only what works end to end is listed, derived from the
route table, the grant registry and the modules that enforce each rule: ``code`` in the query
only, PKCE ``S256`` only, ``iss`` in every authorization response (RFC 9207), no request
objects, public subject identifiers, ID tokens in ES256 or RS256.  ``issuer`` is exactly the
configured issuer.
"""

from __future__ import annotations

import functools
import json

from starlette.requests import Request
from starlette.responses import Response

from sealring.server.clients import AUTH_METHODS, ID_TOKEN_ALGORITHMS
from sealring.server.context import ServerContext
from sealring.server.grants import GRANTS
from sealring.server.http.endpoint import context_of
from sealring.server.protocol.authorization_request import PROMPT_VALUES
from sealring.server.protocol.client_auth import ASSERTION_ALGORITHMS
from sealring.server.protocol.pkce import CODE_CHALLENGE_METHODS_SUPPORTED
from sealring.server.routes import advertised_urls
from sealring.server.settings import Settings

__all__ = ["discovery_answer", "discovery_endpoint", "metadata"]

CONFIDENTIAL_METHODS = [method for method in AUTH_METHODS if method != "none"]
AUTH_METHODS_SUPPORTED = list(AUTH_METHODS)
#: What an ID token or userinfo can carry: the protocol claims and those of the scopes above
#: (OIDC Core §5.4) that a Sealring account holds.
CLAIMS_SUPPORTED = [
    "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "sid", "at_hash",
    "name", "preferred_username", "email", "email_verified",
]  # fmt: skip


def metadata(settings: Settings) -> dict[str, object]:
    algorithms = list(ASSERTION_ALGORITHMS)
    return {
        "issuer": settings.issuer,
        **advertised_urls(settings.issuer),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANTS),
        "code_challenge_methods_supported": list(CODE_CHALLENGE_METHODS_SUPPORTED),
        "authorization_response_iss_parameter_supported": True,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(ID_TOKEN_ALGORITHMS),
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "claims_supported": CLAIMS_SUPPORTED,
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "prompt_values_supported": sorted(PROMPT_VALUES),
        # Public clients (auth method none) for the user grants only (RFC 6749 §2.1).
        "token_endpoint_auth_methods_supported": AUTH_METHODS_SUPPORTED,
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


def discovery_answer(context: ServerContext) -> Response:
    return _response(context.settings)


async def discovery_endpoint(request: Request) -> Response:
    return _response(context_of(request).settings)
