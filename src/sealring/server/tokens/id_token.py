"""OpenID Connect ID tokens (OIDC Core §2, §3.1.3.6) and the claims of scopes (§5.4).

The ID token of the code flow carries the authentication, not the profile: ``iss``, ``sub``,
``aud``, ``exp``, ``iat``, ``auth_time``, ``nonce`` when the request had one, ``sid``, ``amr``,
``acr`` and ``at_hash``.  Claims of the ``profile`` and ``email`` scopes come from
``/userinfo`` (OIDC Core §5.4: with a response type that issues an access token, the claims of
these scopes are returned from the UserInfo endpoint); one goes into the ID token only when it
is named in ``claims_in_id_token`` (the ``claims`` request parameter, §5.5, or a client policy
decided by the caller).

Tokens are signed by :func:`sealring.jose.jwt.encode_jwt` with a :class:`Signer` from the key
manager, the same path as access tokens; the ``alg`` of that signer also picks the hash of
``at_hash`` and ``c_hash``, so the two cannot disagree.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from sealring.jose.algorithms import ALGORITHMS
from sealring.jose.jws import Signer
from sealring.jose.jwt import encode_jwt

__all__ = [
    "ID_TOKEN_TYPE",
    "PROTOCOL_CLAIMS",
    "SCOPE_CLAIMS",
    "Authentication",
    "IDToken",
    "scope_claims",
    "token_hash",
]

ID_TOKEN_TYPE: Final = "JWT"  # noqa: S105 - a media type, not a secret

#: OIDC Core §5.4: the standard claims each scope value requests.
SCOPE_CLAIMS: Final[Mapping[str, tuple[str, ...]]] = {
    "profile": (
        "name",
        "family_name",
        "given_name",
        "middle_name",
        "nickname",
        "preferred_username",
        "profile",
        "picture",
        "website",
        "gender",
        "birthdate",
        "zoneinfo",
        "locale",
        "updated_at",
    ),
    "email": ("email", "email_verified"),
    "address": ("address",),
    "phone": ("phone_number", "phone_number_verified"),
}

#: Claims this module sets; a user record can never supply or override them.
PROTOCOL_CLAIMS: Final = frozenset(
    {
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "nbf",
        "jti",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "azp",
        "sid",
        "at_hash",
        "c_hash",
        "s_hash",
        "cnf",
        "client_id",
        "scope",
    }
)


def _hash_name(alg: str) -> str:
    """The hash of ``alg``'s signature: SHA-2 of the same size; SHA-512 for EdDSA (Ed25519).

    OIDC Core names no hash for EdDSA; Ed25519 uses SHA-512 internally (RFC 8032 §5.1), and
    SHA-512 is what relying-party libraries compute (panva's oidc-token-hash behind
    openid-client, authlib's ``create_half_hash``; the interop test checks authlib).  Sealring's
    EdDSA is Ed25519 only.
    """
    if alg == "EdDSA":
        return "sha512"
    algorithm = ALGORITHMS.get(alg)
    if algorithm is None or algorithm.hash is None:
        raise ValueError(f"no ID token hash is defined for alg {alg!r}")
    return algorithm.hash.name


def token_hash(value: str, alg: str) -> str:
    """OIDC Core §3.1.3.6 ``at_hash`` / §3.3.2.11 ``c_hash``.

    The base64url encoding of the left-most half of the hash of the ASCII octets of ``value``,
    with the hash of the ID token's ``alg``.
    """
    digest = hashlib.new(_hash_name(alg), value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def scope_claims(user_claims: Mapping[str, object], scopes: Iterable[str]) -> dict[str, object]:
    """OIDC Core §5.4: the user's claims that the granted ``scopes`` release (for userinfo).

    Claims the record does not have are left out, not sent as null (OIDC Core §5.3.2).
    """
    names = {name for scope in scopes for name in SCOPE_CLAIMS.get(scope, ())}
    return {
        name: value
        for name, value in user_claims.items()
        if name in names and value is not None and name not in PROTOCOL_CLAIMS
    }


@dataclass(frozen=True)
class Authentication:
    """The login an ID token speaks for; stored with the grant so refreshes repeat it."""

    subject: str
    auth_time: int
    amr: tuple[str, ...] = ()
    acr: str | None = None
    session_id: str | None = None

    def __post_init__(self) -> None:
        # OIDC Core §2: sub is at most 255 ASCII characters and never reassigned.
        if not self.subject or len(self.subject) > 255 or not self.subject.isascii():
            raise ValueError("sub must be 1 to 255 ASCII characters")


@dataclass(frozen=True)
class IDToken:
    """What an ID token says (OIDC Core §2, §3.1.3.6), before it is signed.

    ``aud`` is the client alone, so ``azp`` is not needed (OIDC Core §2: it is for several
    audiences).  ``nonce`` is copied unchanged when the authorization request had one (§3.1.2.1);
    ``access_token`` and ``code``, when given, add ``at_hash`` and ``c_hash``.  Of
    ``user_claims``, only the names in ``claims_in_id_token`` go in.
    """

    issuer: str
    client_id: str
    authentication: Authentication
    now: float
    lifetime: int
    nonce: str | None = None
    access_token: str | None = field(default=None, repr=False)
    code: str | None = field(default=None, repr=False)
    user_claims: Mapping[str, object] | None = field(default=None, repr=False)
    claims_in_id_token: Collection[str] = ()

    def claims(self, alg: str) -> dict[str, object]:
        """The claims set for a token signed with ``alg`` (which picks the hash)."""
        if self.lifetime <= 0:
            raise ValueError("an ID token needs a positive lifetime")
        iat = int(self.now)
        login = self.authentication
        if login.auth_time > iat:
            raise ValueError("auth_time is in the future")
        claims: dict[str, object] = {
            "iss": self.issuer,
            "sub": login.subject,
            "aud": self.client_id,
            "exp": iat + self.lifetime,
            "iat": iat,
            "auth_time": login.auth_time,
        }
        if self.nonce is not None:
            claims["nonce"] = self.nonce
        if login.acr is not None:
            claims["acr"] = login.acr
        if login.amr:
            claims["amr"] = list(login.amr)
        if login.session_id is not None:
            claims["sid"] = login.session_id
        if self.access_token is not None:
            claims["at_hash"] = token_hash(self.access_token, alg)
        if self.code is not None:
            claims["c_hash"] = token_hash(self.code, alg)
        if self.user_claims:
            for name in self.claims_in_id_token:
                value = self.user_claims.get(name)
                if name not in PROTOCOL_CLAIMS and value is not None:
                    claims[name] = value
        return claims

    def sign(self, signer: Signer) -> str:
        """Sign with ``signer`` (a key manager signer, as for access tokens); hashes follow its alg."""
        return encode_jwt(self.claims(signer.alg), signer, typ=ID_TOKEN_TYPE)
