"""The refresh token grant (RFC 6749 §6, OAuth 2.1 §4.3, RFC 9700 §4.14.2).

I/O-free: the store looks the presented token up and, in the same transaction, passes what it
found as a :class:`PresentedRefreshToken` to :func:`check_refresh`, which returns the scopes the
new tokens get, or raises.  Rotation itself (consume and issue the successor in one step, reuse
revokes the family, grace window) is the store's, because only the database can make it atomic;
a token that is already consumed therefore passes these checks and is judged there.
"""

from __future__ import annotations

from sealring.server.clients import Client
from sealring.server.errors import InvalidGrant, InvalidRequest, InvalidScope, UnauthorizedClient
from sealring.server.grants.base import Grant, GrantRequest, SignedLater
from sealring.server.grants.records import PresentedRefreshToken
from sealring.server.protocol.scope import parse_scope

__all__ = ["GRANT", "PresentedRefreshToken", "check_refresh", "refresh"]


def check_refresh(
    token: PresentedRefreshToken | None, *, client: Client, scope: str | None, now: float
) -> tuple[str, ...]:
    """RFC 6749 §6 for an authenticated ``client``: the scopes to issue, or raise.

    §6: the token must have been issued to this client; a ``scope`` may narrow the token's but
    "MUST NOT include any scope not originally granted" (``invalid_scope``); none keeps it.
    """
    if "refresh_token" not in client.grant_types:
        raise UnauthorizedClient("this client may not use the refresh_token grant")
    if (
        token is None
        or token.client_id != client.client_id
        or not token.grant_active
        or now >= token.expires_at
    ):
        raise InvalidGrant("the refresh token is invalid, expired or revoked")
    if scope is None:
        return token.scope
    try:
        if "" in scope.split(" "):
            raise ValueError("empty scope token")
        requested = parse_scope(scope)
    except ValueError:
        raise InvalidScope("scope is not a space-separated list of scope tokens") from None
    if not requested or not set(requested) <= set(token.scope):
        raise InvalidScope("scope may narrow the refresh token's scope, never widen it")
    return requested


def refresh(request: GrantRequest) -> SignedLater:
    """RFC 6749 §6: check the token, rotate it (reuse revokes its family), answer with new tokens.

    The ID token repeats the original login (``sub``, ``auth_time``, ``sid``, OIDC Core §12.2)
    and carries no ``nonce``.
    """
    store = request.user_store()
    client = request.client
    if "refresh_token" not in client.grant_types:
        raise UnauthorizedClient("this client may not use the refresh_token grant")
    presented = request.parameters.get("refresh_token")
    if presented is None:
        raise InvalidRequest("refresh_token is required")
    scopes: tuple[str, ...] = ()

    def check(token: PresentedRefreshToken | None) -> None:
        nonlocal scopes
        scopes = check_refresh(token, client=client, scope=request.scope, now=request.now)

    # RFC 6749 §6: the new refresh token keeps the scope of the one presented; only the access
    # token (and ID token) are narrowed by a smaller ``scope``.
    rotated = store.rotate_refresh_token(presented, now=request.now, check=check)
    token = rotated.token
    return request.user_tokens(
        login=token.login,
        scopes=scopes,
        resources=token.resources,
        grant_id=token.grant_id,
        refresh_token=rotated.refresh_token,
    )


GRANT = Grant(
    "refresh_token",
    refresh,
    parameters=("refresh_token",),
    public_clients=True,
    uses_store=True,
)
