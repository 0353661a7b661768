"""What every grant handler receives and what the registry records about it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sealring.jose.jws import Signer
from sealring.server.clients import Client
from sealring.server.tokens.access_token import IssuedToken

__all__ = ["Grant", "GrantRequest"]


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


@dataclass(frozen=True)
class Grant:
    """One ``grant_type`` and its handler.

    Which clients may use it is the handler's rule (RFC 6749 §4.4: ``client_credentials`` only
    for confidential clients registered for it), checked on the plain values it receives.
    """

    grant_type: str
    handler: Callable[[GrantRequest], IssuedToken]
