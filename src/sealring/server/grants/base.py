"""What every grant handler receives and what the registry records about it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sealring.jose.jws import Signer
from sealring.server.clients import Client
from sealring.server.grants.records import IssuedCode, PresentedRefreshToken

__all__ = ["Grant", "GrantRequest", "TokenResponse", "UserGrantStore"]


class TokenResponse(Protocol):
    """A successful token response (RFC 6749 §5.1)."""

    def response_body(self) -> bytes: ...


class UserGrantStore(Protocol):
    """The storage the user grants read and write, reached through the endpoint's stores.

    Each call is one atomic step in the database; the checks between them are the grants' own,
    on plain values (:func:`~sealring.server.grants.authorization_code.check_code_redemption`,
    :func:`~sealring.server.grants.refresh_token.check_refresh`).
    """

    def find_code(self, code: str) -> IssuedCode | None: ...

    def redeem_code(self, code: str, *, now: float, refresh_token: bool) -> tuple[str, str | None]:
        """Consume the code once: ``(grant id, first refresh token or None)``; raises
        :class:`~sealring.server.grants.authorization_code.CodeReplayed` if it was redeemed
        meanwhile."""
        ...

    def find_refresh_token(self, token: str) -> PresentedRefreshToken | None: ...

    def rotate_refresh_token(
        self, token: str, *, now: float, scope: tuple[str, ...]
    ) -> tuple[str, tuple[str, ...]]:
        """``(successor, its scope)``; raises ``invalid_grant`` (a reuse revokes the family)."""
        ...

    def revoke_grant(self, grant_id: str, *, now: float, reason: str) -> None: ...


@dataclass(frozen=True)
class GrantRequest:
    """The authenticated client and the token request's values, as plain data."""

    client: Client
    scope: str | None
    resources: Sequence[str]
    issuer: str
    lifetime: int
    signer: Signer
    now: float
    #: The grant's own form parameters (:attr:`Grant.parameters`), None when absent.
    parameters: Mapping[str, str | None] = field(default_factory=dict)
    store: UserGrantStore | None = None
    id_token_lifetime: int = 3600
    #: The key for the client's ``id_token_signed_response_alg`` (OIDC Registration §2).
    id_token_signer: Signer | None = None


@dataclass(frozen=True)
class Grant:
    """One ``grant_type`` and its handler.

    Which clients may use it is the handler's rule (RFC 6749 §4.4: ``client_credentials`` only
    for confidential clients registered for it), checked on the plain values it receives.
    ``public_clients``: a client without credentials (auth method ``none``) may call it, which
    RFC 6749 §4.1.3 and §6 allow for the user grants.  ``uses_store``: the handler calls
    :class:`UserGrantStore`, so the endpoint runs it in a worker thread.
    """

    grant_type: str
    handler: Callable[[GrantRequest], TokenResponse]
    parameters: tuple[str, ...] = ()
    public_clients: bool = False
    uses_store: bool = False
