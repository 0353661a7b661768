"""The client credentials grant (RFC 6749 §4.4): a confidential client asks for itself."""

from __future__ import annotations

from collections.abc import Sequence

from sealring.jose.jws import Signer
from sealring.server.clients import Client
from sealring.server.errors import UnauthorizedClient
from sealring.server.grants.base import Grant, GrantRequest
from sealring.server.protocol.resource import granted_audience
from sealring.server.protocol.scope import granted_scopes
from sealring.server.tokens.access_token import IssuedToken, issue_access_token

__all__ = ["GRANT", "issue_client_credentials"]


def issue_client_credentials(
    client: Client,
    *,
    scope: str | None,
    resources: Sequence[str],
    issuer: str,
    lifetime: int,
    signer: Signer,
    now: float,
) -> IssuedToken:
    """RFC 6749 §4.4 for an authenticated client: check the grant, scope and audience; sign.

    §4.4: "The client credentials grant type MUST only be used by confidential clients."
    """
    if "client_credentials" not in client.grant_types or client.public:
        raise UnauthorizedClient("this client may not use the client_credentials grant")
    scopes = granted_scopes(client.scopes, scope)  # invalid_scope before invalid_target
    audience = granted_audience(client.audiences, resources)
    return issue_access_token(
        issuer=issuer,
        subject=client.client_id,
        client_id=client.client_id,
        audience=audience,
        scopes=scopes,
        lifetime=lifetime,
        signer=signer,
        now=now,
    )


def _handle(request: GrantRequest) -> IssuedToken:
    return issue_client_credentials(
        request.client,
        scope=request.scope,
        resources=request.resources,
        issuer=request.issuer,
        lifetime=request.lifetime,
        signer=request.signer,
        now=request.now,
    )


GRANT = Grant("client_credentials", _handle)
