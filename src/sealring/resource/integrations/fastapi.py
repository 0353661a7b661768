"""FastAPI: a dependency that verifies the bearer token and declares the OpenAPI security scheme.

::

    auth = TokenAuth(verifier, realm="api", token_url="https://as.example/token")

    @app.get("/items")
    async def items(claims: AccessTokenClaims = Security(auth.require_token(scopes=["items:read"]))):
        ...

The scheme appears in ``/openapi.json`` as OAuth2 client credentials when ``token_url`` is given,
else as HTTP bearer (JWT), and each operation lists the scopes it requires.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Mapping

from fastapi import HTTPException, Request, Security
from fastapi.openapi.models import (
    HTTPBearer as HTTPBearerModel,
)
from fastapi.openapi.models import (
    OAuth2 as OAuth2Model,
)
from fastapi.openapi.models import (
    OAuthFlowClientCredentials,
    OAuthFlows,
)
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase

from sealring.errors import SealringError
from sealring.resource.bearer import BearerOptions, error_response
from sealring.resource.integrations.starlette import token_from_request
from sealring.resource.verifier import AccessTokenClaims, AccessTokenVerifier

__all__ = ["TokenAuth"]


def _http_exception(exc: SealringError, realm: str | None) -> HTTPException:
    # FastAPI's convention nests the JSON body under "detail"; status and headers are copied.
    answer = error_response(exc, realm)
    return HTTPException(
        answer.status, detail=json.loads(answer.body), headers=dict(answer.headers)
    )


class TokenAuth(SecurityBase):
    """The bearer-token security scheme of an app; ``require_token`` makes its dependencies."""

    def __init__(
        self,
        verifier: AccessTokenVerifier,
        *,
        realm: str | None = None,
        token_url: str | None = None,
        scopes: Mapping[str, str] | None = None,
        scheme_name: str = "sealring",
        description: str | None = None,
        allow_form: bool = False,
        allow_query: bool = False,
    ) -> None:
        self.verifier = verifier
        self.options = BearerOptions(realm=realm, allow_form=allow_form, allow_query=allow_query)
        self.scheme_name = scheme_name
        if token_url is not None:
            flows = OAuthFlows(
                clientCredentials=OAuthFlowClientCredentials(
                    tokenUrl=token_url, scopes=dict(scopes or {})
                )
            )
            self.model = OAuth2Model(flows=flows, description=description)
        else:
            self.model = HTTPBearerModel(bearerFormat="JWT", description=description)

    async def __call__(
        self, request: Request, security_scopes: SecurityScopes
    ) -> AccessTokenClaims:
        try:
            token = await token_from_request(request, self.options)
            cached = self.verifier.cached(token)
            claims = cached if cached is not None else await self.verifier.averify(token)
            claims.require_scopes(security_scopes.scopes)
        except SealringError as exc:
            raise _http_exception(exc, self.options.realm) from None
        return claims

    def require_token(
        self, scopes: Collection[str] = ()
    ) -> Callable[..., Awaitable[AccessTokenClaims]]:
        """A dependency returning the verified claims; 401/400/403 per RFC 6750 otherwise."""
        declared = Security(self, scopes=list(scopes))

        async def token_with_scopes(claims: AccessTokenClaims = declared) -> AccessTokenClaims:
            return claims

        return token_with_scopes
