"""ECDSA malleability and the verified-token cache (issue 10, item 9; docs/security.md).

An ECDSA signature ``(r, s)`` has a twin ``(r, n - s)`` that verifies as well, so one token has
two string forms.  Nothing may trust a form because the other was checked: the cache is keyed on
the whole token, so the twin is a miss and goes through the full verification; and whatever
must recognise a token across its forms (a deny list, a log) keys on ``jti``, which both share.
"""

from __future__ import annotations

import base64

import pytest

from sealring.jose.jwk import JWK
from sealring.resource import AccessTokenVerifier
from sealring.resource.errors import InvalidToken
from tests.helpers.issuer import IssuerServer
from tests.helpers.tokens import mint

# The order of the P-256 group (SEC 2, secp256r1).
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _twin(token: str) -> str:
    """The same token with its ES256 signature (r, s) replaced by (r, n - s)."""
    head, payload, sig = token.split(".")
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    r, s = raw[:32], int.from_bytes(raw[32:], "big")
    return f"{head}.{payload}.{_b64(r + (P256_N - s).to_bytes(32, 'big'))}"


def test_the_twin_signature_is_a_cache_miss_and_is_checked_in_full(
    verifier: AccessTokenVerifier, issuer_server: IssuerServer, key: JWK
) -> None:
    token = mint(key, issuer=issuer_server.issuer)
    twin = _twin(token)
    assert twin != token
    claims = verifier.verify(token)
    assert verifier.cached(token) is claims
    assert verifier.cached(twin) is None  # not answered from the first form's entry
    # It is a valid signature: the full path accepts it, with the same jti.
    assert verifier.verify(twin).jti == claims.jti
    # A twin whose s is out of range, or whose r is altered, verifies neither from the cache
    # nor in full.
    head, payload, sig = token.split(".")
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    for forged in (
        f"{head}.{payload}.{_b64(raw[:32] + (P256_N + 1).to_bytes(33, 'big')[1:])}",
        f"{head}.{payload}.{_b64(bytes([raw[0] ^ 1]) + raw[1:])}",
    ):
        assert verifier.cached(forged) is None
        with pytest.raises(InvalidToken):
            verifier.verify(forged)


def test_stopping_a_kid_refuses_both_forms(
    verifier: AccessTokenVerifier, issuer_server: IssuerServer, key: JWK
) -> None:
    token = mint(key, issuer=issuer_server.issuer)
    twin = _twin(token)
    verifier.verify(token)
    verifier.verify(twin)
    verifier.revoke_kid(issuer_server.issuer, key.kid or "")
    for form in (token, twin):
        assert verifier.cached(form) is None
