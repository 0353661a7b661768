"""The login stores seen through the grants' :class:`~sealring.server.grants.base.UserGrantStore`.

Converts what the stores find (:class:`StoredCode`, :class:`StoredRefreshToken`) into the plain
values the grants check (:class:`IssuedCode`, :class:`PresentedRefreshToken`), and the stores'
errors into OAuth errors.  Every method is synchronous and one transaction; the token endpoint
runs the grant in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable

from sealring.server.errors import InvalidGrant
from sealring.server.grants.records import (
    IssuedCode,
    PresentedRefreshToken,
    RedeemedCode,
    RotatedToken,
)
from sealring.server.grants.user_tokens import Login
from sealring.server.stores.authorization_codes import (
    AuthorizationCodeStore,
    CodeAlreadyRedeemed,
    CodeGrant,
    StoredCode,
)
from sealring.server.stores.refresh_tokens import (
    GrantRecord,
    RefreshTokenInvalid,
    RefreshTokenReused,
    RefreshTokenStore,
    StoredRefreshToken,
)

__all__ = ["UserGrantStorage", "issued_code", "login_of", "presented_refresh_token"]


def login_of(grant: GrantRecord | CodeGrant) -> Login:
    """The login a code or a grant recorded, repeated unchanged in every refresh (OIDC Core
    §12.2)."""
    return Login(
        subject=grant.subject,
        auth_time=grant.auth_time,
        session_id=grant.session_id,
        amr=grant.amr,
        acr=grant.acr,
    )


def issued_code(stored: StoredCode) -> IssuedCode:
    """A stored code as the authorization code grant checks it."""
    g = stored.grant
    return IssuedCode(
        client_id=g.client_id,
        redirect_uri=g.redirect_uri,
        redirect_uri_in_request=g.redirect_uri_in_request,
        code_challenge=g.code_challenge,
        scope=g.scope,
        resources=g.resources,
        login=login_of(g),
        nonce=g.nonce,
        expires_at=stored.expires_at,
        consumed=stored.consumed_at is not None,
        grant_id=stored.grant_id,
    )


def presented_refresh_token(stored: StoredRefreshToken, now: float) -> PresentedRefreshToken:
    """A stored refresh token as the refresh token grant checks it at ``now``.

    Whether it was consumed is left out: the store judges that (reuse or grace retry).
    """
    grant = stored.grant
    return PresentedRefreshToken(
        client_id=grant.client_id,
        scope=stored.scope,
        resources=grant.resources,
        login=login_of(grant),
        expires_at=stored.expires_at,
        grant_active=grant.active(now),
        grant_id=grant.grant_id,
    )


class UserGrantStorage:
    """Implements :class:`~sealring.server.grants.base.UserGrantStore` over the login stores."""

    def __init__(self, codes: AuthorizationCodeStore, refresh_tokens: RefreshTokenStore) -> None:
        self._codes = codes
        self._refresh = refresh_tokens

    def redeem_code(
        self, code: str, *, now: float, check: Callable[[IssuedCode | None], bool]
    ) -> RedeemedCode:
        checked: list[IssuedCode] = []

        def decide(stored: StoredCode | None) -> bool:
            found = issued_code(stored) if stored is not None else None
            wants_refresh = check(found)
            if found is not None:
                checked.append(found)
            return wants_refresh

        try:
            redemption = self._codes.redeem(
                code,
                now=now,
                grant_lifetime=self._refresh.policy.absolute_lifetime,
                refresh_tokens=self._refresh,
                check=decide,
            )
        except CodeAlreadyRedeemed:
            # Only if the check let an unusable code through; refuse it all the same.
            raise InvalidGrant("the authorization code is invalid or expired") from None
        return RedeemedCode(checked[0], redemption.grant_id, redemption.refresh_token)

    def rotate_refresh_token(
        self, token: str, *, now: float, check: Callable[[PresentedRefreshToken | None], object]
    ) -> RotatedToken:
        checked: list[PresentedRefreshToken] = []

        def decide(stored: StoredRefreshToken | None) -> None:
            found = presented_refresh_token(stored, now) if stored is not None else None
            check(found)
            if found is not None:
                checked.append(found)

        try:
            rotation = self._refresh.rotate(token, now=now, check=decide)
        except (RefreshTokenInvalid, RefreshTokenReused):
            raise InvalidGrant("the refresh token is invalid, expired or revoked") from None
        return RotatedToken(checked[0], rotation.refresh_token)

    def revoke_grant(self, grant_id: str, *, now: float, reason: str) -> None:
        self._refresh.revoke_grant(grant_id, now=now, reason=reason)
