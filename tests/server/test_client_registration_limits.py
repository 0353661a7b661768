"""Client registration and secret checks at their limits (RFC 6749 §2, §3.3; RFC 7591 §2).

Names of 1..200 characters, audiences up to 500, secrets compared up to 512 characters, a server
secret of at least 32 bytes; scope tokens as RFC 6749 §3.3 spells them.
"""

from __future__ import annotations

import pytest

from sealring.server.clients import (
    MAX_SECRET_LENGTH,
    ClientMetadataError,
    SecretHasher,
    new_client,
    new_client_id,
    new_secret,
)
from sealring.server.protocol.scope import parse_scope

JWKS = '{"keys": []}'


def test_a_name_is_1_to_200_characters_after_trimming() -> None:
    assert new_client(name="n" * 200).name == "n" * 200
    assert new_client(name="  a  ").name == "a"
    for bad in ("", "   ", "n" * 201):
        with pytest.raises(ClientMetadataError):
            new_client(name=bad)


def test_an_audience_is_up_to_500_characters_without_spaces_or_fragment() -> None:
    assert new_client(name="c", audiences=["a" * 500]).audiences == ("a" * 500,)
    for bad in ("a" * 501, "", "a b", "a\tb", "https://api#x"):
        with pytest.raises(ClientMetadataError):
            new_client(name="c", audiences=[bad])


def test_audiences_and_grants_are_deduplicated_in_order() -> None:
    client = new_client(name="c", audiences=["b", "a", "b"], grant_types=[" client_credentials "])
    assert client.audiences == ("b", "a")
    assert client.grant_types == ("client_credentials",)


def test_a_secret_of_up_to_512_characters_is_compared() -> None:
    hasher = SecretHasher(b"s" * 32)
    longest = "x" * MAX_SECRET_LENGTH
    assert MAX_SECRET_LENGTH == 512
    assert hasher.matches(longest, hasher.hash(longest))
    too_long = "x" * (MAX_SECRET_LENGTH + 1)
    # An over-long secret is never compared as itself (it costs one HMAC of nothing).
    assert not hasher.matches(too_long, hasher.hash(too_long))
    assert not hasher.matches(too_long, hasher.hash(""))  # nor as anything else


class _CountingHasher(SecretHasher):
    def __init__(self, key: bytes) -> None:
        super().__init__(key)
        self.hashed: list[str] = []

    def hash(self, secret: str) -> bytes:
        self.hashed.append(secret)
        return super().hash(secret)


def test_every_comparison_costs_one_hmac_of_at_most_512_characters() -> None:
    """No secret on file, a wrong, a right and an over-long one each take one HMAC (no timing
    difference), and an over-long secret is never hashed as itself (no cost it chooses)."""
    hasher = _CountingHasher(b"s" * 32)
    stored = SecretHasher(b"s" * 32).hash("right")
    for secret, expected in (("right", None), ("wrong", stored), ("right", stored)):
        hasher.hashed.clear()
        hasher.matches(secret, expected)
        assert hasher.hashed == [secret]
    hasher.hashed.clear()
    assert not hasher.matches("x" * 100_000, stored)
    assert len(hasher.hashed) == 1
    assert len(hasher.hashed[0]) <= MAX_SECRET_LENGTH


def test_no_secret_on_file_never_matches() -> None:
    hasher = SecretHasher(b"s" * 32)
    assert not hasher.matches("", None)
    assert not hasher.matches("anything", None)
    assert not hasher.matches("a", hasher.hash("b"))


def test_the_server_secret_is_at_least_32_bytes() -> None:
    assert SecretHasher(b"s" * 32)
    with pytest.raises(ValueError):
        SecretHasher(b"s" * 31)
    assert "s" * 32 not in repr(SecretHasher(b"s" * 32))


def test_client_ids_and_secrets_are_random_and_url_safe() -> None:
    ids = {new_client_id() for _ in range(50)}
    assert len(ids) == 50
    for client_id in ids:
        assert len(client_id) == 26
        assert client_id.isalnum()
        assert client_id == client_id.lower()
    secret = new_secret()
    assert len(secret) == 43
    assert secret != new_secret()


def test_scope_tokens_follow_rfc6749() -> None:
    assert parse_scope("") == ()
    assert parse_scope("a  b a") == ("a", "b")
    assert parse_scope("!#[]~") == ("!#[]~",)
    for bad in ('a"b', "a\\b", "a\tb", "é"):
        with pytest.raises(ValueError):
            parse_scope(bad)


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        ("https://client.example/cb", True),
        ("http://localhost/cb", False),  # RFC 8252 §8.3: a name, not the loopback IP
        ("http://127.0.0.1:8080/cb", True),
        ("http://[::1]/cb", True),
        ("http://client.example/cb", False),
        ("https://client.example/cb#frag", False),
        ("ftp://client.example/cb", False),
        ("https:///cb", False),
        ("/cb", False),
    ],
)
def test_redirect_uris_are_absolute_https_or_loopback_http(uri: str, ok: bool) -> None:
    if ok:
        assert new_client(name="c", redirect_uris=[uri]).redirect_uris == (uri,)
    else:
        with pytest.raises(ClientMetadataError):
            new_client(name="c", redirect_uris=[uri])


@pytest.mark.parametrize(
    ("uri", "public_ok", "confidential_ok"),
    [
        ("https://client.example/cb", True, True),
        ("com.example.app:/cb", True, False),  # RFC 8252 §7.1 private-use scheme
        ("http://127.0.0.1:8080/cb", True, True),
        ("http://[::1]/cb", True, True),
        ("http://localhost/cb", False, False),
        ("http://client.example/cb", False, False),
    ],
)
def test_a_native_apps_redirect_uris_are_for_public_clients(
    uri: str, public_ok: bool, confidential_ok: bool
) -> None:
    """docs/login.md "Redirect URI registration": a public (native) client may use a
    reverse-domain private-use scheme; a confidential client only https or a loopback IP."""
    for public, ok in ((True, public_ok), (False, confidential_ok)):
        if ok:
            registered = new_client(name="c", public=public, redirect_uris=[uri])
            assert registered.redirect_uris == (uri,)
            continue
        with pytest.raises(ClientMetadataError, match="redirect URI"):
            new_client(name="c", public=public, redirect_uris=[uri])


def test_a_refused_http_redirect_uri_names_the_loopback_ips_a_confidential_client_may_use() -> None:
    expected = (
        r"'http://client\.example/cb': "
        r"must use https \(http only on a loopback IP: 127\.0\.0\.1 or \[::1\]\)$"
    )
    with pytest.raises(ClientMetadataError, match=expected):
        new_client(name="c", redirect_uris=["http://client.example/cb"])


def test_a_jwk_set_urls_port_is_at_most_65535() -> None:
    """A port out of range is refused at registration (as a malformed URL, exit 2 in the CLI),
    not left to fail every later token request."""
    assert new_client(name="c", jwks_uri="https://client.example:65535/jwks").jwks_uri
    with pytest.raises(ClientMetadataError, match="not an absolute http"):
        new_client(name="c", jwks_uri="https://client.example:65536/jwks")


def test_a_jwk_set_urls_port_is_at_least_1() -> None:
    """Port 0 names no listening server: refused at registration like any other bad port."""
    assert new_client(name="c", jwks_uri="https://client.example:1/jwks").jwks_uri
    with pytest.raises(ClientMetadataError, match="not an absolute http"):
        new_client(name="c", jwks_uri="https://client.example:0/jwks")


def test_the_auth_method_follows_from_the_registration() -> None:
    assert new_client(name="c").auth_method == "client_secret_basic"
    assert new_client(name="c", public=True).auth_method == "none"
    assert new_client(name="c", jwks=JWKS).auth_method == "private_key_jwt"
    jwks_uri = "https://client.example/jwks"
    assert new_client(name="c", jwks_uri=jwks_uri).auth_method == "private_key_jwt"
    assert new_client(name="c", public=True).grant_types == ()
    for bad in (
        {"auth_method": "client_secret_jwt"},
        {"public": True, "auth_method": "client_secret_basic"},
        {"auth_method": "none"},
        {"public": True, "grant_types": ["client_credentials"]},
        {"grant_types": ["authorization_code"]},
        {"auth_method": "private_key_jwt"},
        {"jwks": JWKS, "jwks_uri": jwks_uri},
        {"jwks": JWKS, "auth_method": "client_secret_post"},
        {"jwks_uri": "http://client.example/jwks"},
        {"scope": "a\tb"},
    ):
        with pytest.raises(ClientMetadataError):
            new_client(name="c", **bad)  # type: ignore[arg-type]


def test_a_registered_key_set_is_checked_when_asked() -> None:
    seen: list[str] = []
    new_client(name="c", jwks=JWKS, check_jwks=seen.append)
    assert seen == [JWKS]
