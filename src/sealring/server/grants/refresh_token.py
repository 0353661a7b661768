"""The refresh token grant (RFC 6749 §6, OAuth 2.1 §4.3, RFC 9700 §4.14.2).

I/O-free: the endpoint looks the presented token up and passes what it found as a
:class:`PresentedRefreshToken`; :func:`check_refresh` returns the scopes the new tokens get, or
raises.  Rotation itself (consume and issue the successor in one step, reuse revokes the family,
grace window) is the store's, because only the database can make it atomic; a token that is
already consumed therefore passes these checks and is judged there.
"""

from __future__ import annotations

from dataclasses import dataclass

from sealring.server.clients import Client
from sealring.server.errors import InvalidGrant, InvalidScope, UnauthorizedClient
from sealring.server.grants.user_tokens import Login
from sealring.server.protocol.scope import parse_scope

__all__ = ["PresentedRefreshToken", "check_refresh"]


@dataclass(frozen=True)
class PresentedRefreshToken:
    """A refresh token as the store found it, with its family."""

    client_id: str
    scope: tuple[str, ...]
    resources: tuple[str, ...]
    login: Login
    expires_at: float
    grant_active: bool


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
