"""Client registration rules, secret hashing and the repository on both databases."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from sealring.db import make_engine, upgrade
from sealring.jose.jwk import JWK
from sealring.keys import KEKRing
from sealring.server.clients import (
    Client,
    ClientMetadataError,
    SecretHasher,
    new_client,
    new_secret,
)
from sealring.server.stores.clients import ClientCache, ClientRepository
from sealring.server.stores.server_secret import load_server_secret


def test_secrets_are_256_bits_and_hashed_with_a_key() -> None:
    secret = new_secret()
    assert len(secret) == 43
    a, b = SecretHasher(b"a" * 32), SecretHasher(b"b" * 32)
    assert a.hash(secret) != b.hash(secret)
    assert a.matches(secret, a.hash(secret))
    assert not a.matches(secret + "x", a.hash(secret))
    assert not a.matches(secret, None)
    assert not a.matches("x" * 10_000, a.hash("x" * 10_000))  # over the length cap
    assert repr(a) == "SecretHasher(<hidden>)"  # the key is never printed
    with pytest.raises(ValueError):
        SecretHasher(b"short")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"name": ""}, "name"),
        ({"name": "x", "auth_method": "client_secret_jwt"}, "auth method"),
        ({"name": "x", "public": True, "auth_method": "client_secret_basic"}, "public"),
        ({"name": "x", "grant_types": ["password"]}, "not supported"),
        ({"name": "x", "public": True, "grant_types": ["client_credentials"]}, "confidential"),
        ({"name": "x", "scope": 'a "b"'}, "scope"),
        ({"name": "x", "audiences": ["has space"]}, "audience"),
        ({"name": "x", "redirect_uris": ["http://evil.example/cb"]}, "https"),
        ({"name": "x", "redirect_uris": ["https://a.example/#f"]}, "fragment"),
        ({"name": "x", "auth_method": "private_key_jwt"}, "public keys"),
        ({"name": "x", "jwks_uri": "https://a.example/jwks", "jwks": "{}"}, "not both"),
        ({"name": "x", "auth_method": "client_secret_basic", "jwks": "{}"}, "private_key_jwt"),
        ({"name": "x", "jwks_uri": "http://a.example/jwks"}, "https"),
        ({"name": "x", "jwks_uri": "https://a.example/jwks#keys"}, "without fragment"),
        ({"name": "x", "jwks_uri": "ftp://a.example/jwks"}, "absolute http(s) URI"),
        ({"name": "x", "jwks_uri": "https:///jwks"}, "absolute http(s) URI"),
        ({"name": "x", "jwks_uri": "https://:443/jwks"}, "absolute http(s) URI"),
        ({"name": "x", "jwks_uri": "https://user@/jwks"}, "absolute http(s) URI"),
        ({"name": "x", "jwks_uri": "https://[::1/jwks"}, "absolute http(s) URI"),
        ({"name": "x", "jwks_uri": "https://a.example:x/jwks"}, "absolute http(s) URI"),
    ],
)
def test_registration_is_checked(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ClientMetadataError) as err:
        new_client(**kwargs)  # type: ignore[arg-type]
    assert fragment in err.value.message


def test_registration_defaults() -> None:
    confidential = new_client(name="svc", scope="b a b", audiences=["https://x", "https://y"])
    assert confidential.auth_method == "client_secret_basic"
    assert confidential.grant_types == ("client_credentials",)
    assert confidential.scopes == ("b", "a")
    assert confidential.default_audience == "https://x"
    assert new_client(name="p", public=True).auth_method == "none"
    assert new_client(name="p", public=True).grant_types == ()
    assert new_client(name="k", jwks_uri="https://a.example/j").auth_method == "private_key_jwt"
    plain = new_client(name="svc")
    assert (plain.scopes, plain.audiences, plain.redirect_uris) == ((), (), ())
    assert (plain.skip_consent, plain.introspect, plain.id_token_alg) == (False, False, "ES256")
    # A public client with a redirect URI is an app users sign in to.
    app = new_client(name="app", public=True, redirect_uris=["com.example.app:/cb"])
    assert app.grant_types == ("authorization_code", "refresh_token")


def test_refresh_tokens_come_only_with_the_authorization_code_grant() -> None:
    uris = ["https://app.example/cb"]
    both = new_client(
        name="c", grant_types=["authorization_code", "refresh_token"], redirect_uris=uris
    )
    assert both.grant_types == ("authorization_code", "refresh_token")
    for grants in (["refresh_token"], ["client_credentials", "refresh_token"]):
        with pytest.raises(ClientMetadataError, match="only issued with authorization_code"):
            new_client(name="c", grant_types=grants, redirect_uris=uris)


def test_a_refused_redirect_uri_names_the_field_it_came_from() -> None:
    bad = "https://app.example/cb#f"
    with pytest.raises(ClientMetadataError, match=r"^redirect URI 'https://app\.example/cb#f': "):
        new_client(name="c", redirect_uris=[bad])
    with pytest.raises(
        ClientMetadataError, match=r"^post-logout redirect URI 'https://app\.example/cb#f': "
    ):
        new_client(name="c", post_logout_redirect_uris=[bad])
    with pytest.raises(ClientMetadataError, match=r"^JWK Set URL 'https://app\.example/cb#f' "):
        new_client(name="c", jwks_uri=bad)


def test_post_logout_redirect_uris_follow_the_redirect_uri_rules() -> None:
    """OpenID Connect RP-Initiated Logout §3.1: registered like redirect URIs, so a native
    app's private-use scheme only for a public client; kept once each, in order."""
    uris = ["com.example.app:/bye", "http://127.0.0.1:9/bye", "com.example.app:/bye"]
    app = new_client(name="app", public=True, post_logout_redirect_uris=uris)
    assert app.post_logout_redirect_uris == ("com.example.app:/bye", "http://127.0.0.1:9/bye")
    with pytest.raises(ClientMetadataError, match=r"^post-logout redirect URI"):
        new_client(name="svc", post_logout_redirect_uris=["com.example.app:/bye"])


def test_every_registered_setting_reaches_the_client() -> None:
    client = new_client(name="c", now=1234.5, skip_consent=True, id_token_alg="RS256")
    assert (client.created_at, client.skip_consent, client.id_token_alg) == (1234.5, True, "RS256")
    before = time.time()
    created = new_client(name="c").created_at
    assert before <= created <= time.time()


def test_repository_and_cache(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        kek = KEKRing.from_string(KEKRing.generate_text())
        secret_key = load_server_secret(engine, None, kek=kek)
        assert load_server_secret(engine, None, kek=kek) == secret_key  # created once, reused
        assert load_server_secret(engine, b"k" * 32) == b"k" * 32
        repo = ClientRepository(engine)
        key = JWK.from_key(ec.generate_private_key(ec.SECP256R1()), alg="ES256")
        client = new_client(
            name="svc",
            scope="a b",
            audiences=["https://api"],
            jwks=json.dumps({"keys": [key.public().to_dict()]}),
        )
        repo.add(client, None)
        loaded = repo.get(client.client_id)
        assert loaded is not None
        assert loaded.scopes == ("a", "b")
        assert loaded.jwks == client.jwks
        assert [c.client_id for c in repo.list()] == [client.client_id]

        now = [0.0]
        cache = ClientCache(repo, ttl=5, clock=lambda: now[0])
        assert cache.get(client.client_id) is not None
        assert cache.get("unknown") is None
        repo.delete(client.client_id)
        assert cache.get(client.client_id) is not None  # still cached
        now[0] = 6
        assert cache.get(client.client_id) is None
        assert repo.set_secret_hash("unknown", b"x" * 32) is False
    finally:
        engine.dispose()


def test_a_secret_hash_is_hmac_sha256_under_the_server_secret() -> None:
    """Stored hashes stay valid: the value is HMAC-SHA-256(server secret, UTF-8 secret), the
    same whatever HMAC implementation computes it; another key or secret gives another value."""
    key = bytes(range(32))
    hasher = SecretHasher(key)
    for secret in ("", "s3cret", "é" * 40, new_secret()):
        expected = hmac.new(key, secret.encode("utf-8"), hashlib.sha256).digest()
        assert hasher.hash(secret) == expected
        assert hasher.matches(secret, expected)
        assert not hasher.matches(secret + "x", expected)
        assert SecretHasher(bytes(32)).hash(secret) != expected


def test_a_clients_description_is_its_registration_by_rfc7591_names_without_the_hash() -> None:
    """What `sealring clients add/list/show --json` print: every registered field under its
    RFC 7591 / OIDC Registration name, the key set only as present or not, never the hash."""
    confidential = Client(
        client_id="c1",
        name="Photo app",
        auth_method="private_key_jwt",
        grant_types=("authorization_code", "refresh_token"),
        scopes=("read", "write"),
        audiences=("https://api.example", "https://files.example"),
        redirect_uris=("https://app.example/cb",),
        jwks='{"keys": []}',
        created_at=1_700_000_000.5,
        secret_hash=b"h" * 32,
        introspect=True,
        skip_consent=True,
        post_logout_redirect_uris=("https://app.example/bye",),
        id_token_alg="RS256",
    )
    assert confidential.describe() == {
        "client_id": "c1",
        "client_name": "Photo app",
        "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "read write",
        "audiences": ["https://api.example", "https://files.example"],
        "redirect_uris": ["https://app.example/cb"],
        "jwks_uri": None,
        "has_jwks": True,
        "public": False,
        "introspect": True,
        "skip_consent": True,
        "post_logout_redirect_uris": ["https://app.example/bye"],
        "id_token_signed_response_alg": "RS256",
        "created_at": 1_700_000_000.5,
    }
    public = Client(client_id="p1", name="CLI", auth_method="none").describe()
    assert (public["public"], public["has_jwks"], public["jwks_uri"]) == (True, False, None)
    assert (public["scope"], public["grant_types"], public["introspect"]) == ("", [], False)
    assert public["id_token_signed_response_alg"] == "ES256"
    keyed = Client(
        client_id="k1", name="Job", auth_method="private_key_jwt", jwks_uri="https://j.example/k"
    ).describe()
    assert (keyed["jwks_uri"], keyed["has_jwks"]) == ("https://j.example/k", False)
    text = json.dumps(confidential.describe())  # printed as JSON: only JSON types
    assert "h" * 32 not in text
    assert "secret" not in text
