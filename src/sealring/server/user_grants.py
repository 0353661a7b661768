"""The login stores seen through the grants' :class:`~sealring.server.grants.base.UserGrantStore`.

Converts what the stores find (:class:`StoredCode`, :class:`StoredRefreshToken`) into the plain
values the grants check (:class:`IssuedCode`, :class:`PresentedRefreshToken`), and the stores'
errors into OAuth errors.  Every method is synchronous; the token endpoint runs the grant in a
worker thread.
"""

from __future__ import annotations

from sealring.server.errors import InvalidGrant
from sealring.server.grants.authorization_code import CodeReplayed
from sealring.server.grants.records import IssuedCode, PresentedRefreshToken
from sealring.server.grants.user_tokens import Login
from sealring.server.stores.authorization_codes import (
    AuthorizationCodeStore,
    CodeAlreadyRedeemed,
    StoredCode,
)
from sealring.server.stores.refresh_tokens import (
    GrantRecord,
    RefreshTokenInvalid,
    RefreshTokenReused,
    RefreshTokenStore,
)

__all__ = ["UserGrantStorage", "login_of"]


def login_of(grant: GrantRecord) -> Login:
    """The login a grant recorded, repeated unchanged in every refresh (OIDC Core §12.2)."""
    return Login(
        subject=grant.subject,
        auth_time=grant.auth_time,
        session_id=grant.session_id,
        amr=grant.amr,
        acr=grant.acr,
    )


def _issued(stored: StoredCode) -> IssuedCode:
    g = stored.grant
    return IssuedCode(
        client_id=g.client_id,
        redirect_uri=g.redirect_uri,
        redirect_uri_in_request=g.redirect_uri_in_request,
        code_challenge=g.code_challenge,
        scope=g.scope,
        resources=g.resources,
        login=Login(
            subject=g.subject,
            auth_time=g.auth_time,
            session_id=g.session_id,
            amr=g.amr,
            acr=g.acr,
        ),
        nonce=g.nonce,
        expires_at=stored.expires_at,
        consumed=stored.consumed_at is not None,
        grant_id=stored.grant_id,
    )


class UserGrantStorage:
    """Implements :class:`~sealring.server.grants.base.UserGrantStore` over the login stores."""

    def __init__(self, codes: AuthorizationCodeStore, refresh_tokens: RefreshTokenStore) -> None:
        self._codes = codes
        self._refresh = refresh_tokens

    def find_code(self, code: str) -> IssuedCode | None:
        stored = self._codes.find(code)
        return _issued(stored) if stored is not None else None

    def redeem_code(self, code: str, *, now: float, refresh_token: bool) -> tuple[str, str | None]:
        stored = self._codes.find(code)
        if stored is None:  # pruned between the check and now
            raise InvalidGrant("the authorization code is invalid or expired")
        try:
            redemption = self._codes.redeem(
                stored,
                now=now,
                grant_lifetime=self._refresh.policy.absolute_lifetime,
                refresh_tokens=self._refresh if refresh_token else None,
            )
        except CodeAlreadyRedeemed as exc:
            if exc.grant_id is None:  # expired between the check and now: nothing was issued
                raise InvalidGrant("the authorization code is invalid or expired") from None
            raise CodeReplayed(exc.grant_id) from None
        return redemption.grant_id, redemption.refresh_token

    def find_refresh_token(self, token: str) -> PresentedRefreshToken | None:
        stored = self._refresh.find(token)
        if stored is None:
            return None
        grant = stored.grant
        return PresentedRefreshToken(
            client_id=grant.client_id,
            scope=stored.scope,
            resources=grant.resources,
            login=login_of(grant),
            # A consumed token is judged by rotate (reuse or grace retry), not refused here.
            expires_at=stored.expires_at,
            grant_active=grant.revoked_at is None,
            grant_id=grant.grant_id,
        )

    def rotate_refresh_token(
        self, token: str, *, now: float, scope: tuple[str, ...]
    ) -> tuple[str, tuple[str, ...]]:
        stored = self._refresh.find(token)
        if stored is None:
            raise InvalidGrant("the refresh token is invalid, expired or revoked")
        try:
            rotation = self._refresh.rotate(stored, now=now, scope=scope)
        except (RefreshTokenInvalid, RefreshTokenReused):
            raise InvalidGrant("the refresh token is invalid, expired or revoked") from None
        return rotation.refresh_token, rotation.scope

    def revoke_grant(self, grant_id: str, *, now: float, reason: str) -> None:
        self._refresh.revoke_grant(grant_id, now=now, reason=reason)
