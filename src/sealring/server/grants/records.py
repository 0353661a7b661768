"""What the token endpoint found in storage, as the user grants check it: plain values."""

from __future__ import annotations

from dataclasses import dataclass

from sealring.server.grants.user_tokens import Login

__all__ = ["IssuedCode", "PresentedRefreshToken", "RedeemedCode", "RotatedToken"]


@dataclass(frozen=True)
class IssuedCode:
    """A code as the store found it: what it is bound to, and its state."""

    client_id: str
    redirect_uri: str
    redirect_uri_in_request: bool
    code_challenge: str
    scope: tuple[str, ...]
    resources: tuple[str, ...]
    login: Login
    nonce: str | None
    expires_at: float
    consumed: bool
    grant_id: str | None = None


@dataclass(frozen=True)
class PresentedRefreshToken:
    """A refresh token as the store found it, with its family."""

    client_id: str
    scope: tuple[str, ...]
    resources: tuple[str, ...]
    login: Login
    expires_at: float
    grant_active: bool
    grant_id: str | None = None


@dataclass(frozen=True)
class RedeemedCode:
    """A code the store consumed after the grant's checks passed: the code as checked, the
    grant (refresh-token family) it started and that family's first refresh token, if any."""

    code: IssuedCode
    grant_id: str
    refresh_token: str | None


@dataclass(frozen=True)
class RotatedToken:
    """A refresh token the store rotated after the grant's checks passed: the token as checked
    and its successor."""

    token: PresentedRefreshToken
    refresh_token: str
