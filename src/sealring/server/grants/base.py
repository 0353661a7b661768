"""What every grant handler receives and what the registry records about it."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sealring.jose.jws import Signer
from sealring.server.clients import Client
from sealring.server.grants.records import (
    IssuedCode,
    PresentedRefreshToken,
    RedeemedCode,
    RotatedToken,
)
from sealring.server.grants.user_tokens import Login, UserTokens, issue_user_tokens

__all__ = ["Grant", "GrantRequest", "SignedLater", "TokenResponse", "UserGrantStore"]


class TokenResponse(Protocol):
    """A successful token response (RFC 6749 §5.1)."""

    def response_body(self) -> bytes: ...


@dataclass(frozen=True)
class SignedLater:
    """A user grant's token response, signed when it is serialised.

    The user grants run inside their database transaction (on SQLite, in a group that holds
    the write lock for every process: ``server/sqlite_writer.py``); the token endpoint
    serialises the response after that returns, so signing the tokens (and encoding them)
    happens outside the lock.  What the tokens say is fixed here; only the signature is
    computed later.
    """

    issue: Callable[[], UserTokens]

    def response_body(self) -> bytes:
        return self.issue().response_body()


class UserGrantStore(Protocol):
    """The storage the user grants read and write, reached through the endpoint's stores.

    Each grant is one call and one transaction: the store looks the presented value up with the
    write lock held, hands what it found (or None) to the grant's ``check``, and writes only if
    the check returns.  The checks themselves are the grants' own, on plain values
    (:func:`~sealring.server.grants.authorization_code.check_code_redemption`,
    :func:`~sealring.server.grants.refresh_token.check_refresh`); whatever they raise propagates
    with nothing written.
    """

    def redeem_code(
        self, code: str, *, now: float, check: Callable[[IssuedCode | None], bool]
    ) -> RedeemedCode:
        """Consume the code once; ``check`` returns whether the grant gets a refresh token."""
        ...

    def rotate_refresh_token(
        self, token: str, *, now: float, check: Callable[[PresentedRefreshToken | None], object]
    ) -> RotatedToken:
        """Consume the token and issue its successor; a token used before raises
        ``invalid_grant`` and revokes its family."""
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

    def user_store(self) -> UserGrantStore:
        """The login stores, which the token endpoint passes to every user grant."""
        if self.store is None:
            raise RuntimeError("the user grants need the login stores")
        return self.store

    def user_tokens(
        self,
        *,
        login: Login,
        scopes: Sequence[str],
        resources: Sequence[str],
        grant_id: str | None,
        refresh_token: str | None,
        nonce: str | None = None,
    ) -> SignedLater:
        """The response of a user grant (RFC 6749 §5.1): the same for a code and a refresh;
        signed when serialised (:class:`SignedLater`)."""
        return SignedLater(
            functools.partial(
                issue_user_tokens,
                client=self.client,
                login=login,
                scopes=scopes,
                resources=resources,
                issuer=self.issuer,
                lifetime=self.lifetime,
                id_token_lifetime=self.id_token_lifetime,
                signer=self.signer,
                id_token_signer=self.id_token_signer,
                now=self.now,
                nonce=nonce,
                refresh_token=refresh_token,
                grant_id=grant_id,
            )
        )


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
