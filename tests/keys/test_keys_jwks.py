"""JWKSDocument (keys/jwks.py): the published JWK Set, its ETag and what it refuses to publish."""

from __future__ import annotations

import pytest

from sealring.jose.jwk import PRIVATE_MEMBERS
from sealring.keys import JWKSDocument


@pytest.mark.parametrize(
    ("if_none_match", "matches"),
    [
        (None, False),
        ("", False),
        ('"abc"', True),
        ('W/"abc"', True),  # RFC 9110 §13.1.2: If-None-Match compares weakly
        (' "x" ,  W/"abc" ', True),
        ("*", True),
        ('"x", "y"', False),
        ('"ab"', False),
        ('"abc', False),
        ("abc", False),
    ],
)
def test_jwks_document_if_none_match(if_none_match: str | None, matches: bool) -> None:
    doc = JWKSDocument(body=b'{"keys":[]}', etag='"abc"', max_age=10)
    assert doc.matches(if_none_match) is matches


def test_jwks_document_refuses_private_members() -> None:
    for member in PRIVATE_MEMBERS:
        with pytest.raises(ValueError, match="private members"):
            JWKSDocument.build([{"kty": "EC", "kid": "k", member: "x"}], 10)
    assert (
        JWKSDocument.build([{"kty": "EC", "kid": "k"}], 10).body
        == b'{"keys":[{"kid":"k","kty":"EC"}]}'
    )
