"""The tokens a user's grant yields: access token, optional refresh token, optional ID token.

Shared by the authorization code grant (RFC 6749 §4.1.4) and the refresh token grant (§6), which
answer with the same response (§5.1).  The access token is RFC 9068's with ``sub`` the user's
stable id, the ``client_id`` and ``scope``, plus ``auth_time`` (RFC 9068 §2.2.1) and ``sid`` (the
browser session, so logout can find it).  An ID token (OIDC Core §3.1.3.3) is added only when
``openid`` is among the granted scopes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sealring.jose.jws import Signer
from sealring.server.clients import Client
from sealring.server.protocol.resource import granted_audience
from sealring.server.tokens.access_token import IssuedToken, issue_access_token
from sealring.server.tokens.id_token import Authentication, IDToken

__all__ = ["GRANT_CLAIM", "Login", "UserTokens", "issue_user_tokens", "refresh_token_allowed"]

#: The private claim naming the grant (refresh-token family) an access token was issued from, so
#: ``/introspect`` and ``/userinfo`` refuse it once the grant is revoked (code replay, refresh
#: token reuse, ``/revoke`` of its refresh token).
GRANT_CLAIM = "grant_id"


@dataclass(frozen=True)
class Login:
    """Who signed in and how, as the grant recorded it (repeated unchanged on refresh)."""

    subject: str
    auth_time: float
    session_id: str | None = None
    amr: tuple[str, ...] = ()
    acr: str | None = None


@dataclass(frozen=True)
class UserTokens:
    """The token response (RFC 6749 §5.1, OIDC Core §3.1.3.3)."""

    access: IssuedToken
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)

    def response_body(self) -> bytes:
        body: dict[str, Any] = json.loads(self.access.response_body())
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        if self.id_token is not None:
            body["id_token"] = self.id_token
        return json.dumps(body, separators=(",", ":")).encode()


def user_audience(client: Client, resources: Sequence[str], issuer: str) -> str | list[str]:
    """RFC 8707's audience when resources were bound or the client has a default one; else the
    issuer itself, whose ``/userinfo`` is then what the token is good for."""
    if resources or client.audiences:
        return granted_audience(client.audiences, resources)
    return issuer


def refresh_token_allowed(client: Client, scopes: Sequence[str]) -> bool:
    """Whether a login yields a refresh token: the client is registered for the grant, and an
    OpenID Connect request was granted ``offline_access`` (OIDC Core §11); a plain OAuth request
    (no ``openid``) needs only the registration."""
    if "refresh_token" not in client.grant_types:
        return False
    return "offline_access" in scopes or "openid" not in scopes


def issue_user_tokens(
    *,
    client: Client,
    login: Login,
    scopes: Sequence[str],
    resources: Sequence[str],
    issuer: str,
    lifetime: int,
    id_token_lifetime: int,
    signer: Signer,
    now: float,
    nonce: str | None = None,
    refresh_token: str | None = None,
    grant_id: str | None = None,
    id_token_signer: Signer | None = None,
) -> UserTokens:
    """The token response of a user's grant; the ID token is signed by ``id_token_signer`` (the
    client's ``id_token_signed_response_alg``) or, if None, by ``signer``."""
    extra: dict[str, object] = {"auth_time": int(login.auth_time)}
    if login.session_id is not None:
        extra["sid"] = login.session_id
    if grant_id is not None:
        extra[GRANT_CLAIM] = grant_id
    access = issue_access_token(
        issuer=issuer,
        subject=login.subject,
        client_id=client.client_id,
        audience=user_audience(client, resources, issuer),
        scopes=scopes,
        lifetime=lifetime,
        signer=signer,
        now=now,
        extra_claims=extra,
    )
    id_token = None
    if "openid" in scopes:
        id_token = IDToken(
            issuer=issuer,
            client_id=client.client_id,
            authentication=Authentication(
                subject=login.subject,
                auth_time=int(login.auth_time),
                amr=login.amr,
                acr=login.acr,
                session_id=login.session_id,
            ),
            now=now,
            lifetime=id_token_lifetime,
            nonce=nonce,
            access_token=access.access_token,
        ).sign(id_token_signer or signer)
    return UserTokens(access, refresh_token, id_token)
