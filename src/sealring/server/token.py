"""The token endpoint (RFC 6749 §3.2, §4.4 ``client_credentials``) and RFC 9068 access tokens.

The hot path: the client comes from the in-memory cache, its secret is checked with one HMAC,
the signer is the key manager's cached one, and nothing is written to the database.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sealring.jose.errors import JoseError
from sealring.jose.jwks import KeySet
from sealring.jose.jws import Signer
from sealring.jose.jwt import JWTVerifier, VerifiedJWT, encode_jwt
from sealring.server.client_auth import extract_credentials
from sealring.server.clients import Client, parse_scope
from sealring.server.errors import (
    NO_STORE_HEADERS,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    OAuthError,
    TemporarilyUnavailable,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from sealring.server.forms import read_form
from sealring.server.state import KeySource, ServerState, oauth_endpoint, state_of

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "IssuedToken",
    "OwnTokenVerifier",
    "issue_client_credentials",
    "token_endpoint",
]

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+\Z")  # RFC 3986 §4.3, no spaces


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str

    def response_body(self) -> bytes:
        """RFC 6749 §5.1."""
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }
        if self.scope:
            body["scope"] = self.scope
        return json.dumps(body, separators=(",", ":")).encode()


def granted_scopes(client: Client, requested: str | None) -> tuple[str, ...]:
    """RFC 6749 §3.3: a subset of the client's scopes; none requested means all of them.

    ``scope = scope-token *( SP scope-token )``: a leading, trailing or doubled space is as
    malformed as a character outside NQCHAR.
    """
    if requested is None:
        return client.scopes
    try:
        if requested and "" in requested.split(" "):
            raise ValueError("empty scope token")
        scopes = parse_scope(requested)
    except ValueError:
        raise InvalidScope("scope is not a space-separated list of scope tokens") from None
    allowed = set(client.scopes)
    if not all(s in allowed for s in scopes):
        raise InvalidScope("a requested scope is not allowed for this client")
    return scopes


def granted_audience(client: Client, resources: Sequence[str]) -> str | list[str]:
    """RFC 8707 §2: each ``resource`` must be one the client may use; else its default.

    A ``resource`` that is not an absolute URI, or that has a fragment, is ``invalid_target``
    whatever the client's registration says.
    """
    if not resources:
        if client.default_audience is None:
            raise InvalidTarget("no resource requested and the client has no default audience")
        return client.default_audience
    unique = list(dict.fromkeys(resources))
    if not all(_ABSOLUTE_URI.match(r) and "#" not in r for r in unique):
        raise InvalidTarget("resource must be an absolute URI without a fragment")
    allowed = set(client.audiences)
    if not all(r in allowed for r in unique):
        raise InvalidTarget("a requested resource is not allowed for this client")
    return unique[0] if len(unique) == 1 else unique


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
    """RFC 6749 §4.4 for an authenticated client: check the grant, scope and audience; sign."""
    if "client_credentials" not in client.grant_types or client.public:
        raise UnauthorizedClient("this client may not use the client_credentials grant")
    scopes = granted_scopes(client, scope)
    audience = granted_audience(client, resources)
    iat = int(now)
    claims: dict[str, object] = {
        "iss": issuer,
        "sub": client.client_id,
        "aud": audience,
        "exp": iat + lifetime,
        "iat": iat,
        "jti": secrets.token_urlsafe(16),
        "client_id": client.client_id,
    }
    scope_text = " ".join(scopes)
    if scope_text:
        claims["scope"] = scope_text
    token = encode_jwt(claims, signer, typ=ACCESS_TOKEN_TYPE)
    return IssuedToken(token, lifetime, scope_text)


class OwnTokenVerifier:
    """Verifies access tokens this server issued, against its own published keys.

    Rebuilt only when the JWKS document changes (its ETag).
    """

    def __init__(self, keys: KeySource, issuer: str, *, clock: Any = time.time) -> None:
        self._keys = keys
        self._issuer = issuer
        self._clock = clock
        self._etag: str | None = None
        self._verifier: JWTVerifier | None = None

    def verify(self, token: str) -> VerifiedJWT:
        doc = self._keys.jwks()
        if self._verifier is None or doc.etag != self._etag:
            self._verifier = JWTVerifier(
                KeySet.from_json(doc.body),
                issuer=self._issuer,
                typ=ACCESS_TOKEN_TYPE,
                required=("exp", "iat", "jti", "client_id", "sub"),
                clock=self._clock,
            )
            self._etag = doc.etag
        return self._verifier.verify(token)


def signer_for(state: ServerState) -> Signer:
    try:
        return state.keys.signer(state.settings.signing_alg)
    except Exception as exc:  # KeyUnavailable, or a broken HSM session: fail closed
        raise TemporarilyUnavailable("no signing key is available") from exc


@oauth_endpoint("token")
async def token_endpoint(request: Request) -> Response:
    state = state_of(request)
    settings = state.settings
    form = await read_form(request, settings.max_body_size)
    creds = extract_credentials(request.headers.getlist("authorization"), form)
    grant_type = form.get("grant_type")
    if grant_type is None:
        raise InvalidRequest("grant_type is required")
    client = await state.authenticator.authenticate(creds, endpoint=settings.token_endpoint)
    request.scope["sealring.client_id"] = client.client_id
    if grant_type != "client_credentials":
        # The value is not echoed: §5.2 limits error_description to printable ASCII.
        raise UnsupportedGrantType("only grant_type client_credentials is supported")
    if state.rate_limiter is not None:
        await state.rate_limiter.check(client.client_id)
    try:
        issued = issue_client_credentials(
            client,
            scope=form.get("scope"),
            resources=form.getall("resource"),
            issuer=settings.issuer,
            lifetime=settings.token_lifetime,
            signer=signer_for(state),
            now=state.clock(),
        )
    except OAuthError:
        raise
    except JoseError as exc:
        raise TemporarilyUnavailable("the token could not be signed") from exc
    state.metrics.tokens_issued.labels("client_credentials", client.client_id).inc()
    return Response(
        issued.response_body(),
        headers=dict(NO_STORE_HEADERS),
        media_type="application/json",
    )
